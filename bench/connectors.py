"""How fast the connectors read real-sized inventories over HTTP, and what refusing a huge answer costs.

All servers are real (uvicorn on 127.0.0.1), so the numbers include HTTP, JSON and paging:

- ``rest``: the generic REST source pulling 5,000 items, 5,000 positions (offset pages of 500)
  and 50,000 consumption records (cursor pages of 1,000);
- ``inventree``: the InvenTree source against the emulated API with 1,000 parts, their supplier
  parts, price breaks and stock, and 20,000 stock-tracking entries (pages of 500);
- ``oversize``: a 50 MB answer refused at ``max_response_bytes`` (20 MiB): time and memory.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from bench._common import save_result

RESULTS = Path(__file__).parent / "results" / "connectors.json"


def _rest_app(items: int, history: int):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    catalog = [{"code": f"SKU{i:05d}", "name": f"Item {i}"} for i in range(items)]
    stock = [{"item": {"code": f"SKU{i:05d}"}, "wh": "W1", "qty": i % 97} for i in range(items)]
    moves = [{"item": f"SKU{i % items:05d}", "wh": "W1", "day": f"2026-{1 + i % 12:02d}-"
              f"{1 + i % 28:02d}", "qty": 1 + i % 5} for i in range(history)]

    async def items_view(request):
        return JSONResponse(catalog)

    async def stock_view(request):
        limit, offset = int(request.query_params["limit"]), int(request.query_params["offset"])
        return JSONResponse({"results": stock[offset:offset + limit], "count": len(stock)})

    async def moves_view(request):
        at = int(request.query_params.get("cursor", "0"))
        nxt = at + 1000 if at + 1000 < len(moves) else None
        return JSONResponse({"data": moves[at:at + 1000], "next": nxt})

    return Starlette(routes=[Route("/items", items_view), Route("/stock", stock_view),
                             Route("/moves", moves_view)])


def bench_rest(items: int = 5_000, history: int = 50_000) -> dict:
    from tests.support.loopback import serve_asgi

    from restock.connectors import ConnectorContext, Scope
    from restock_connectors.rest import RestSource

    with serve_asgi(_rest_app(items, history)) as url:
        settings = RestSource.Settings.model_validate({"base_url": url, "endpoints": {
            "catalog": {"path": "/items", "fields": {"sku": "code", "description": "name"}},
            "positions": {"path": "/stock", "fields": {"sku": "item.code", "location": "wh",
                                                       "on_hand": "qty"},
                          "pagination": {"kind": "offset", "items": "results",
                                         "page_size": 500, "total": "count"}},
            "history": {"path": "/moves", "fields": {"sku": "item", "location": "wh",
                                                     "date": "day", "quantity": "qty"},
                        "pagination": {"kind": "cursor", "items": "data"}}}})
        with RestSource(settings, ConnectorContext(org="bench")) as source:
            started = time.perf_counter()
            snap = source.pull(Scope())
            seconds = time.perf_counter() - started
    rows = len(snap.catalog) + len(snap.positions) + len(snap.history)
    return {"records": rows, "requests": 1 + items // 500 + history // 1000,
            "seconds": round(seconds, 3), "records_per_second": round(rows / seconds)}


def _inventree(parts: int, tracking: int):
    from tests.support.inventree import InvenTreeEmulator

    emulator = InvenTreeEmulator(token="bench-token")
    supplier = emulator.add("company", name="Acme", is_supplier=True, currency="USD")
    location = emulator.add("location", name="Main", pathstring="Main")
    for i in range(parts):
        part = emulator.add("part", name=f"Part {i}", IPN=f"P{i:05d}", purchaseable=True,
                            active=True, default_location=location["pk"], units="")
        sp = emulator.add("supplier_part", part=part["pk"], supplier=supplier["pk"],
                          SKU=f"A-{i}", pack_quantity="10", pack_quantity_native=10.0)
        emulator.add("price_break", part=sp["pk"], quantity=1.0, price=1.5,
                     price_currency="USD")
        emulator.add("stock", part=part["pk"], quantity=float(i % 50 + 1),
                     location=location["pk"])
    for i in range(tracking):
        emulator.add("track", item=1 + i % parts, part=1 + i % parts, tracking_type=12,
                     date=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00",
                     deltas={"removed": 1.0 + i % 3})
    return emulator


def bench_inventree(parts: int = 1_000, tracking: int = 20_000) -> dict:
    import os

    from tests.support.loopback import serve_asgi

    from restock.connectors import ConnectorContext, Scope
    from restock_connectors.inventree import InvenTreeSource

    emulator = _inventree(parts, tracking)
    os.environ["RESTOCK_BENCH_INVENTREE_TOKEN"] = "bench-token"
    with serve_asgi(emulator.app()) as url:
        settings = InvenTreeSource.Settings.model_validate(
            {"url": url, "token": "${RESTOCK_BENCH_INVENTREE_TOKEN}", "page_size": 500})
        with InvenTreeSource(settings, ConnectorContext(org="bench")) as source:
            started = time.perf_counter()
            snap = source.pull(Scope())
            seconds = time.perf_counter() - started
    return {"parts": len(snap.catalog), "offers": len(snap.offers),
            "history_rows": len(snap.history), "tracking_entries": tracking,
            "requests": len(emulator.calls), "seconds": round(seconds, 3)}


def bench_oversize(megabytes: int = 50) -> dict:
    from starlette.responses import StreamingResponse
    from tests.support.loopback import serve_asgi

    from restock.errors import ConnectorError
    from restock.http import HttpSettings, client

    chunk = b"x" * 65536

    async def huge(scope, receive, send):
        async def body():
            for _ in range(megabytes * 16):
                yield chunk
        await StreamingResponse(body())(scope, receive, send)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with serve_asgi(huge) as url, client(HttpSettings(base_url=url), "bench") as http:
        started = time.perf_counter()
        try:
            http.get_json("/")
        except ConnectorError:
            pass
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"answer_mb": megabytes, "limit_mb": 20, "seconds_to_refuse": round(seconds, 3),
            "peak_rss_growth_mb": round((after - before) / 1024, 1)}


def main() -> dict:
    result = {"oversize": bench_oversize(), "rest": bench_rest(), "inventree": bench_inventree()}
    save_result(RESULTS, result)
    print(f"connectors: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
