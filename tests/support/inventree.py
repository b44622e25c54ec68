"""An emulated InvenTree REST API, built from the exchanges recorded against a real server
(shared/notes/inventree-api.md) and its published API behaviour:

- ``Authorization: Token <token>`` on every call, 401 otherwise;
- lists are plain JSON arrays unless ``limit`` is passed, then ``{count, next, previous, results}``;
- a PO line's ``part`` is a *supplier part* id; quantity and price are per supplier pack;
- ``auto_pricing`` prices a line from the supplier part's price breaks;
- a second line for the same supplier part is merged into the first unless ``merge_items`` is false;
- ``POST /api/order/po/<pk>/issue/`` moves a PENDING (10) order to PLACED (20).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PENDING, PLACED, CANCELLED = 10, 20, 40
STATUS_TEXT = {PENDING: "Pending", PLACED: "Placed", CANCELLED: "Cancelled"}


@dataclass
class InvenTreeEmulator:
    token: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    # "POST /api/order/po-line/" -> statuses for its next calls, 0 for a call that behaves
    fail_on: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("company", "category", "location", "part", "supplier_part", "price_break",
                     "stock", "track", "po", "po_line"):
            self.tables.setdefault(name, [])

    # -- seeding

    def add(self, table: str, **row: Any) -> dict[str, Any]:
        row.setdefault("pk", len(self.tables[table]) + 1)
        self.tables[table].append(row)
        return row

    def seed(self) -> InvenTreeEmulator:
        """The recorded demo: two suppliers, three parts, stock in two places, some removals."""
        acme = self.add("company", name="Acme Components", is_supplier=True, currency="USD")
        bolt = self.add("company", name="Bolt Co", is_supplier=True, currency="USD")
        cat = self.add("category", name="Consumables", pathstring="Consumables")
        shelf = self.add("location", name="Shelf A", pathstring="Main Warehouse/Shelf A")
        main = self.add("location", name="Main Warehouse", pathstring="Main Warehouse")
        screw = self.add("part", name="M3 Screw", IPN="M3-SCREW", description="M3x8 pan head screw",
                         category=cat["pk"], purchaseable=True, active=True, minimum_stock=500.0,
                         default_location=main["pk"], units="")
        tie = self.add("part", name="Cable Tie", IPN="CABLE-TIE", description="Cable tie 150 mm",
                       category=cat["pk"], purchaseable=True, active=True, minimum_stock=200.0,
                       default_location=main["pk"], units="")
        label = self.add("part", name="Label Roll", IPN="LABEL-ROLL", description="50x25 labels",
                         category=cat["pk"], purchaseable=True, active=True, minimum_stock=10.0,
                         default_location=main["pk"], units="")
        sp_screw = self._supplier_part(screw, acme, "ACME-M3-8", 100)
        sp_bolt = self._supplier_part(screw, bolt, "BOLT-M3X8", 1)
        sp_tie = self._supplier_part(tie, acme, "ACME-CT-150", 1)
        sp_label = self._supplier_part(label, acme, "ACME-LBL-5025", 1)
        self.add("price_break", part=sp_screw["pk"], quantity=1.0, price=0.05, price_currency="USD")
        self.add("price_break", part=sp_screw["pk"], quantity=1000.0, price=0.03,
                 price_currency="USD")
        self.add("price_break", part=sp_bolt["pk"], quantity=1.0, price=0.0009,
                 price_currency="USD")
        self.add("price_break", part=sp_tie["pk"], quantity=1.0, price=0.02, price_currency="USD")
        self.add("price_break", part=sp_label["pk"], quantity=1.0, price=12.5, price_currency="USD")
        item_main = self.add("stock", part=screw["pk"], quantity=450.0, location=main["pk"])
        self.add("stock", part=screw["pk"], quantity=150.0, location=shelf["pk"])
        self.add("stock", part=tie["pk"], quantity=120.0, location=main["pk"])
        self.add("stock", part=label["pk"], quantity=3.0, location=main["pk"])
        self.add("track", item=item_main["pk"], part=screw["pk"], date="2026-11-20 09:12",
                 tracking_type=12, label="Stock manually removed",
                 deltas={"removed": 350.0, "quantity": 450.0})
        self.add("track", item=item_main["pk"], part=screw["pk"], date="2026-11-20 15:40",
                 tracking_type=12, label="Stock manually removed",
                 deltas={"removed": 50.0, "quantity": 400.0})
        self.add("track", item=item_main["pk"], part=screw["pk"], date="2026-11-21 10:00",
                 tracking_type=1, label="Stock item created", deltas={"quantity": 800.0})
        self.add("track", item=3, part=tie["pk"], date="2026-11-22 08:00", tracking_type=12,
                 label="Stock manually removed", deltas={"removed": 30.0, "quantity": 120.0})
        po = self.add("po", reference="PO-0001", supplier=acme["pk"], status=PLACED,
                      status_text="Placed", description="placed by hand", supplier_reference="",
                      destination=main["pk"], target_date="2026-12-01", issue_date="2026-11-24")
        self.add("po_line", order=po["pk"], part=sp_label["pk"], quantity=10.0, received=4.0,
                 purchase_price=12.5, purchase_price_currency="USD")
        return self

    def _supplier_part(self, part: dict, company: dict, sku: str, pack: float) -> dict:
        return self.add("supplier_part", part=part["pk"], supplier=company["pk"], SKU=sku,
                        pack_quantity=str(int(pack)), pack_quantity_native=float(pack),
                        description=f"{part['name']} from {company['name']}")

    # -- the app

    def app(self) -> Starlette:
        lists = {"/api/company/": "company", "/api/part/category/": "category",
                 "/api/stock/location/": "location", "/api/part/": "part",
                 "/api/company/part/": "supplier_part", "/api/company/price-break/": "price_break",
                 "/api/stock/": "stock", "/api/stock/track/": "track"}
        routes = [Route(path, self._lister(table), methods=["GET", "POST"])
                  for path, table in lists.items()]
        routes += [
            Route("/api/", self._root), Route("/api/user/me/", self._me),
            Route("/api/part/{pk:int}/", self._detail("part")),
            Route("/api/order/po/", self._po, methods=["GET", "POST"]),
            Route("/api/order/po/{pk:int}/", self._detail("po")),
            Route("/api/order/po/{pk:int}/issue/", self._issue, methods=["POST"]),
            Route("/api/order/po-line/", self._po_line, methods=["GET", "POST"]),
        ]
        return Starlette(routes=routes)

    def _guard(self, request: Request) -> Response | None:
        self.calls.append((request.method, request.url.path, dict(request.query_params)))
        if request.headers.get("authorization") != f"Token {self.token}":
            return JSONResponse({"detail": "Invalid token."}, status_code=401)
        if self.fail_next:
            return JSONResponse({"detail": "busy"}, status_code=self.fail_next.pop(0))
        planned = self.fail_on.get(f"{request.method} {request.url.path}")
        status = planned.pop(0) if planned else 0          # 0: this one behaves
        if status:
            return JSONResponse({"detail": "server error"}, status_code=status)
        return None

    async def _root(self, request: Request) -> Response:
        return JSONResponse({"server": "InvenTree", "version": "1.6.0 dev", "apiVersion": 532})

    async def _me(self, request: Request) -> Response:
        return self._guard(request) or JSONResponse({"pk": 1, "username": "restock"})

    def _lister(self, table: str):
        async def handler(request: Request) -> Response:
            denied = self._guard(request)
            if denied:
                return denied
            if request.method == "POST":
                return self._create(table, json.loads(await request.body()))
            return self._list(request, self.tables[table])
        return handler

    def _create(self, table: str, body: dict[str, Any]) -> Response:
        """Creating catalogue rows, as an opt-in test seeds a real server."""
        row = self.add(table, **body)
        if table == "supplier_part":          # InvenTree derives the number from the text
            row["pack_quantity_native"] = float(body.get("pack_quantity") or 1)
        for key in ("quantity", "price", "minimum_stock"):
            if key in row:
                row[key] = float(row[key])
        return JSONResponse(row, status_code=201)

    def _detail(self, table: str):
        async def handler(request: Request) -> Response:
            denied = self._guard(request)
            if denied:
                return denied
            for row in self.tables[table]:
                if row["pk"] == request.path_params["pk"]:
                    return JSONResponse(row)
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return handler

    def _list(self, request: Request, rows: list[dict]) -> Response:
        query = dict(request.query_params)
        limit, offset = query.pop("limit", None), int(query.pop("offset", 0) or 0)
        search = query.pop("search", None)
        outstanding = query.pop("outstanding", None)
        in_stock = query.pop("in_stock", None)
        min_date = query.pop("min_date", None)          # stock tracking: date > min_date
        for ignored in ("supplier_detail", "part_detail", "ordering"):
            query.pop(ignored, None)
        picked = [r for r in rows if all(_matches(r.get(k), v) for k, v in query.items())]
        if search:
            picked = [r for r in picked if any(search.lower() in str(v).lower()
                                               for v in r.values())]
        if outstanding is not None:
            picked = [r for r in picked if (r.get("status") in (PENDING, PLACED)) ==
                      (outstanding.lower() == "true")]
        if min_date is not None:
            picked = [r for r in picked if str(r.get("date", "")) > min_date]
        if in_stock is not None:
            picked = [r for r in picked if _in_stock(r) == (in_stock == "true")]
        if limit is None:
            return JSONResponse(picked)
        page = picked[offset:offset + int(limit)]
        more = offset + int(limit) < len(picked)
        nxt = f"{request.url.path}?limit={limit}&offset={offset + int(limit)}" if more else None
        return JSONResponse({"count": len(picked), "next": nxt, "previous": None,
                             "results": page})

    async def _po(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied:
            return denied
        if request.method == "GET":
            return self._list(request, self.tables["po"])
        body = json.loads(await request.body())
        if len(body.get("supplier_reference") or "") > 64:
            return JSONResponse({"supplier_reference": [
                "Ensure this field has no more than 64 characters."]}, status_code=400)
        if not any(c["pk"] == body.get("supplier") for c in self.tables["company"]):
            return JSONResponse({"supplier": ["Invalid pk - object does not exist."]},
                                status_code=400)
        row = self.add("po", reference=f"PO-{len(self.tables['po']) + 1:04d}", status=PENDING,
                       status_text="Pending", issue_date=None, **{
                           k: body.get(k, "") for k in ("supplier", "description",
                                                         "supplier_reference", "destination",
                                                         "target_date")})
        return JSONResponse(row, status_code=201)

    async def _issue(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied:
            return denied
        po = next((p for p in self.tables["po"] if p["pk"] == request.path_params["pk"]), None)
        if po is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        if po["status"] != PENDING:
            return JSONResponse({"non_field_errors": ["Order is not pending"]}, status_code=400)
        po.update(status=PLACED, status_text="Placed", issue_date="2026-11-25")
        return JSONResponse({}, status_code=201)

    async def _po_line(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied:
            return denied
        if request.method == "GET":
            return self._list(request, self.tables["po_line"])
        body = json.loads(await request.body())
        sp = next((s for s in self.tables["supplier_part"] if s["pk"] == body.get("part")), None)
        if sp is None:
            return JSONResponse({"part": ["Invalid pk - object does not exist."]},
                                status_code=400)
        quantity = float(body["quantity"])
        price = body.get("purchase_price")
        if body.get("auto_pricing", True) and price is None:
            price = self._price(sp["pk"], quantity)
        if body.get("merge_items", True):
            for line in self.tables["po_line"]:
                if line["order"] == body["order"] and line["part"] == sp["pk"]:
                    line["quantity"] += quantity          # the pitfall: silently merged
                    return JSONResponse(line, status_code=201)
        row = self.add("po_line", order=body["order"], part=sp["pk"], quantity=quantity,
                       received=0.0, purchase_price=None if price is None else float(price),
                       purchase_price_currency=body.get("purchase_price_currency", "USD"),
                       reference=body.get("reference", ""), sku=sp["SKU"],
                       internal_part=sp["part"])
        return JSONResponse(row, status_code=201)

    def _price(self, supplier_part: int, packs: float) -> float | None:
        breaks = sorted((b for b in self.tables["price_break"] if b["part"] == supplier_part),
                        key=lambda b: b["quantity"])
        price = None
        for b in breaks:
            if b["quantity"] <= packs:
                price = b["price"]
        return price

    # -- views for assertions

    def orders_with(self, text: str) -> list[dict]:
        return [p for p in self.tables["po"]
                if text in (p.get("supplier_reference") or "") + (p.get("description") or "")]

    def lines_of(self, po_pk: int) -> list[dict]:
        return [line for line in self.tables["po_line"] if line["order"] == po_pk]


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return value == (wanted.lower() == "true")
    return str(value) == wanted


def _in_stock(row: dict) -> bool:
    try:
        return float(row.get("quantity", 0)) > 0
    except (TypeError, ValueError):       # a garbled row is passed on for the client to judge
        return True
