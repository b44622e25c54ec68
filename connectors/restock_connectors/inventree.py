"""InvenTree (open-source inventory management) through its REST API with an API token.

Source YAML::

    source:
      connector: inventree
      url: https://inventree.example.com
      token: ${INVENTREE_TOKEN}

Order sink YAML::

    order_sink:
      connector: inventree
      url: https://inventree.example.com
      token: ${INVENTREE_TOKEN}
      destination: 2            # stock location pk that receives the goods (optional)

Facts the connector relies on (learned from a real server): every list is paginated only when
``limit`` is passed; a PO line's ``part`` is the *supplier part* id and its quantity and price are
per supplier pack; ``auto_pricing`` prices a line from price breaks; a second line for the same
supplier part is merged into the first unless ``merge_items`` is false; the low-stock filter ignores
stock on order, so on-order is netted here from open purchase-order lines; stock tracking is
read from ``min_date`` on when a history start is asked for (servers that ignore the filter still
give the right answer, only slower).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from restock.config import SecretRef
from restock.connectors import ConnectorContext, InventorySource, OrderSink, Scope, SubmitResult
from restock.domain import (
    CATALOG_COLUMNS,
    HISTORY_COLUMNS,
    OFFER_COLUMNS,
    OPEN_ORDER_COLUMNS,
    POSITION_COLUMNS,
    OrderLine,
    PurchaseOrder,
    Snapshot,
)
from restock.errors import ConnectorError
from restock.http import ApiKeyAuth, HttpClient, HttpOptions, HttpUrl, Pagination, client

PENDING = 10
OPEN_STATUSES = (10, 20, 25)                 # pending, placed, on hold
CONSUMING = (12, 30, 57, 60, 100)            # removed, installed, build consumed, shipped, sent
SYSTEM = "inventree"
SUPPLIER_REFERENCE_MAX = 64                  # InvenTree's column width


class InvenTreeSettings(HttpOptions):
    """Where InvenTree is and how restock names things in it."""

    url: HttpUrl
    token: SecretRef
    sku_field: Literal["IPN", "name", "pk"] = "IPN"   # empty IPNs fall back to the part name
    key_field: Literal["supplier_reference", "description"] = "supplier_reference"
    consumption_types: list[int] = Field(default_factory=lambda: list(CONSUMING))
    destination: int | None = None                   # stock location pk for new orders
    auto_pricing: bool = True                        # price lines from InvenTree's price breaks
    issue: bool = True                               # place (issue) each order after creating it
    page_size: int = Field(500, ge=1, le=10000)      # rows per list request (passed as limit)


def _client(settings: InvenTreeSettings) -> HttpClient:
    http = settings.http_settings(settings.url.rstrip("/") + "/api/")
    auth = ApiKeyAuth(kind="api_key", header="Authorization", prefix="Token ", key=settings.token)
    return client(http.model_copy(update={"auth": auth}), SYSTEM)


class _Api:
    """Typed reads of the InvenTree endpoints restock uses."""

    def __init__(self, http: HttpClient, settings: InvenTreeSettings) -> None:
        self.http, self.settings = http, settings

    def rows(self, path: str, **params: Any) -> list[dict[str, Any]]:
        pages = Pagination(kind="offset", items="results", total="count",
                           page_size=self.settings.page_size)
        found = list(self.http.paginate(path, pages, params))
        bad = next((r for r in found if not isinstance(r, dict) or "pk" not in r), None)
        if bad is not None:
            raise ConnectorError(SYSTEM, f"GET /api/{path}: a row without pk ({str(bad)[:80]})")
        return found

    def by_pk(self, path: str, **params: Any) -> dict[int, dict[str, Any]]:
        return {row["pk"]: row for row in self.rows(path, **params)}

    def sku(self, part: dict[str, Any]) -> str:
        field = self.settings.sku_field
        if field == "pk":
            return str(part["pk"])
        value = part.get(field) or (part.get("name") if field == "IPN" else None)
        if not value:
            raise ConnectorError(SYSTEM, f"part {part['pk']} has no {field}")
        return str(value)

    def orders_by_key(self, key: str) -> list[dict[str, Any]]:
        field = self.settings.key_field
        found = self.rows("order/po/", search=key)
        return [po for po in found if (po.get(field) == key if field == "supplier_reference"
                                       else key in (po.get(field) or ""))]


def _need(row: dict[str, Any], *names: str, what: str) -> None:
    missing = [n for n in names if n not in row]
    if missing:
        raise ConnectorError(SYSTEM, f"{what} {row.get('pk', '?')} lacks {', '.join(missing)}")


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConnectorError(SYSTEM, f"{what}: not a number ({str(value)[:40]!r})") from None


def _pack(supplier_part: dict[str, Any]) -> float:
    """Units in one supplier pack: the server's number, else its text if that is a number.

    Never a guessed 1: lines are sent in packs, so a wrong pack size multiplies the order.
    """
    value = supplier_part.get("pack_quantity_native")
    if value is None:
        value = supplier_part.get("pack_quantity")
    if value is None or value == "":
        return 1.0
    pack = _number(value, f"supplier part {supplier_part.get('pk')} pack_quantity")
    if not pack > 0:
        raise ConnectorError(SYSTEM, f"supplier part {supplier_part.get('pk')} pack_quantity: "
                             f"must be above 0 (got {pack:g})")
    return pack


# ---------------------------------------------------------------- source

class InvenTreeSource(InventorySource):
    """Parts, supplier parts with packs and price breaks, stock, consumption and open orders."""

    Settings = InvenTreeSettings
    name = "inventree"
    settings: InvenTreeSettings

    def __init__(self, settings: InvenTreeSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http = _client(settings)
        self.api = _Api(self.http, settings)

    def check(self) -> None:
        self.http.get_json("user/me/")

    def close(self) -> None:
        self.http.close()

    def pull(self, scope: Scope) -> Snapshot:
        api = self.api
        parts = {pk: p for pk, p in api.by_pk("part/", purchaseable="true").items()
                 if p.get("active", True)}
        skus = {pk: api.sku(p) for pk, p in parts.items()}
        locations = {pk: loc.get("pathstring") or loc.get("name") or str(pk)
                     for pk, loc in api.by_pk("stock/location/").items()}
        stock = api.rows("stock/", in_stock="true")
        open_lines = self._open_lines(skus)
        snapshot = Snapshot(
            catalog=self._catalog(parts, skus),
            offers=self._offers(skus),
            positions=self._positions(parts, skus, locations, stock, open_lines),
            history=self._history(parts, skus, locations, stock, scope),
            open_orders=_frame([line["row"] for line in open_lines], OPEN_ORDER_COLUMNS),
            as_of=date.today(), source=f"inventree:{self.settings.url}")
        return _narrow(snapshot, scope)

    def _catalog(self, parts: dict, skus: dict) -> pd.DataFrame:
        categories = {pk: c.get("pathstring") or c.get("name")
                      for pk, c in self.api.by_pk("part/category/").items()}
        rows = [{"sku": skus[pk], "description": p.get("description") or p.get("name", ""),
                 "category": categories.get(p.get("category")), "unit": p.get("units") or "each"}
                for pk, p in parts.items()]
        return _frame(rows, CATALOG_COLUMNS)

    def _offers(self, skus: dict) -> pd.DataFrame:
        companies = {pk: c.get("name", str(pk)) for pk, c in self.api.by_pk("company/").items()}
        breaks: dict[int, list[dict]] = defaultdict(list)
        for b in self.api.rows("company/price-break/"):
            breaks[b.get("part")].append(b)
        rows = []
        for sp in self.api.rows("company/part/"):
            _need(sp, "part", "supplier", what="supplier part")
            if sp["part"] in skus:
                rows += self._offer_rows(sp, skus[sp["part"]], companies, breaks[sp["pk"]])
        return _frame(rows, OFFER_COLUMNS)

    def _offer_rows(self, sp: dict, sku: str, companies: dict, breaks: list[dict]) -> list[dict]:
        pack = _pack(sp)
        base = {"sku": sku, "supplier": companies.get(sp["supplier"], str(sp["supplier"])),
                "lead_time_days": math.nan, "pack_size": pack, "supplier_sku": sp.get("SKU"),
                "currency": None}
        if not breaks:                        # kept, unpriced: cleaning reports it
            return [{**base, "unit_price": math.nan, "moq": pack, "min_qty": pack}]
        first = min(_number(b.get("quantity"), "price break quantity") for b in breaks)
        return [{**base, "unit_price": _number(b.get("price"), f"price break {b['pk']}") / pack,
                 "min_qty": _number(b.get("quantity"), "price break quantity") * pack,
                 "moq": first * pack, "currency": b.get("price_currency")} for b in breaks]

    def _open_lines(self, skus: dict) -> list[dict]:
        packs = {sp["pk"]: (sp.get("part"), _pack(sp))
                 for sp in self.api.rows("company/part/")}
        companies = {pk: c.get("name", str(pk)) for pk, c in self.api.by_pk("company/").items()}
        found = []
        for po in self.api.rows("order/po/", outstanding="true"):
            if po.get("status") not in OPEN_STATUSES:
                continue
            reference = po.get(self.settings.key_field) or ""
            reference = reference if reference.startswith("restock-") else po.get("reference")
            for line in self.api.rows("order/po-line/", order=po["pk"]):
                part, pack = packs.get(line.get("part"), (None, 1.0))
                if part not in skus:
                    continue
                left = max(0.0, _number(line.get("quantity"), "PO line quantity")
                           - _number(line.get("received") or 0, "PO line received")) * pack
                found.append({"part": part, "location": po.get("destination"), "row": {
                    "reference": reference, "sku": skus[part],
                    "supplier": companies.get(po.get("supplier"), str(po.get("supplier"))),
                    "quantity": left, "expected_date": po.get("target_date")}})
        return found

    def _positions(self, parts, skus, locations, stock, open_lines) -> pd.DataFrame:
        totals: dict[tuple[int, Any], dict[str, float]] = defaultdict(
            lambda: {"on_hand": 0.0, "allocated": 0.0, "on_order": 0.0})
        for item in stock:
            if item.get("part") in skus:
                cell = totals[(item["part"], item.get("location"))]
                cell["on_hand"] += _number(item.get("quantity"), f"stock item {item['pk']}")
                cell["allocated"] += _number(item.get("allocated") or 0, "allocated")
        for line in open_lines:
            where = line["location"] or parts[line["part"]].get("default_location")
            totals[(line["part"], where)]["on_order"] += line["row"]["quantity"]
        for pk, part in parts.items():
            if not any(key[0] == pk for key in totals):
                totals[(pk, part.get("default_location"))]["on_hand"] += 0.0
        rows = [{"sku": skus[pk], "location": locations.get(loc, "unassigned"),
                 "backorders": 0.0, **cell} for (pk, loc), cell in totals.items()]
        return _frame(rows, POSITION_COLUMNS)

    def _history(self, parts, skus, locations, stock, scope: Scope) -> pd.DataFrame:
        item_location = {item["pk"]: item.get("location") for item in stock}
        since = pd.Timestamp(scope.since).date() if scope.since is not None else None
        # min_date is "strictly after"; a day's margin, and the exact cut is made below
        window = {} if since is None else {"min_date": (since - timedelta(days=1)).isoformat()}
        rows = []
        for entry in self.api.rows("stock/track/", **window):
            if entry.get("tracking_type") not in self.settings.consumption_types or \
                    entry.get("part") not in skus:
                continue
            removed = (entry.get("deltas") or {}).get("removed")
            if removed is None:
                continue
            day = _day(entry.get("date"))
            if since is not None and day < since:
                continue
            loc = item_location.get(entry.get("item")) or \
                parts[entry["part"]].get("default_location")
            rows.append({"sku": skus[entry["part"]], "location": locations.get(loc, "unassigned"),
                         "date": day, "quantity": _number(removed, f"tracking {entry['pk']}")})
        frame = _frame(rows, HISTORY_COLUMNS)
        if frame.empty:
            return frame
        return frame.groupby(["sku", "location", "date"], as_index=False)["quantity"].sum()


def _day(value: Any) -> date:
    try:
        return datetime.fromisoformat(str(value).replace(" ", "T")).date()
    except ValueError:
        raise ConnectorError(SYSTEM, f"stock tracking date not understood: {value!r}") from None


def _frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def _narrow(snapshot: Snapshot, scope: Scope) -> Snapshot:
    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        if scope.skus is not None and "sku" in frame:
            frame = frame[frame["sku"].isin(scope.skus)]
        if scope.locations is not None and "location" in frame:
            frame = frame[frame["location"].isin(scope.locations)]
        return frame.reset_index(drop=True)
    for name in ("catalog", "offers", "positions", "history", "open_orders"):
        setattr(snapshot, name, keep(getattr(snapshot, name)))
    return snapshot


# ---------------------------------------------------------------- order sink

class InvenTreeOrderSink(OrderSink):
    """One purchase order per supplier with its lines, then placed; resumable by key."""

    Settings = InvenTreeSettings
    name = "inventree"
    settings: InvenTreeSettings

    def __init__(self, settings: InvenTreeSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http = _client(settings)
        self.api = _Api(self.http, settings)

    def check(self) -> None:
        self.http.get_json("user/me/")

    def close(self) -> None:
        self.http.close()

    def lookup(self, idempotency_key: str) -> SubmitResult | None:
        """The placed order carrying this key; a half-made (pending) one counts as not there,
        so that ``submit`` completes it."""
        for po in self.api.orders_by_key(idempotency_key):
            if po.get("status") != PENDING or not self.settings.issue:
                return SubmitResult(accepted=True, external_id=po.get("reference"),
                                    duplicate=True, detail=po.get("status_text", ""))
        return None

    def submit(self, order: PurchaseOrder, idempotency_key: str) -> SubmitResult:
        """Create (or finish) the PO carrying the key, its lines in packs, then place it.

        Every line is matched to a supplier part and its pack size before anything is created,
        so an order that cannot be placed leaves nothing half-made behind.
        """
        self._check_key_fits(idempotency_key)
        existing = self.api.orders_by_key(idempotency_key)
        if existing and existing[0].get("status", PENDING) != PENDING:
            po = existing[0]
            return SubmitResult(accepted=True, external_id=po.get("reference"), duplicate=True,
                                detail=f"already {po.get('status_text', 'placed')}")
        supplier = existing[0]["supplier"] if existing else self._supplier_pk(order.supplier)
        lines = self._plan_lines(order, supplier)
        po = existing[0] if existing else self._create(order, idempotency_key, supplier)
        present = {line.get("part") for line in self.api.rows("order/po-line/", order=po["pk"])}
        for line, sp, pack in lines:
            if sp["pk"] not in present:
                self._add_line(po, line, sp, pack, order.currency)
                present.add(sp["pk"])
        if self.settings.issue:
            self.http.request("POST", f"order/po/{po['pk']}/issue/", json={}, retry="unsent")
        return SubmitResult(accepted=True, external_id=po.get("reference"),
                            duplicate=bool(existing), detail="resumed" if existing else "created")

    def _plan_lines(self, order: PurchaseOrder, supplier: int
                    ) -> list[tuple[OrderLine, dict[str, Any], float]]:
        """Each line with its supplier part and pack size; ConnectorError if one is unknown."""
        supplier_parts = self._supplier_parts(supplier)
        part_pks = self._part_pks_by_sku(order)
        planned = []
        for line in order.lines:
            sp = self._supplier_part_for(line, supplier_parts, part_pks)
            planned.append((line, sp, _pack(sp)))
        return planned

    def _check_key_fits(self, key: str) -> None:
        if self.settings.key_field == "supplier_reference" and len(key) > SUPPLIER_REFERENCE_MAX:
            raise ConnectorError(SYSTEM, f"idempotency key of {len(key)} characters does not fit "
                                 f"a PO's supplier_reference ({SUPPLIER_REFERENCE_MAX}); "
                                 "set key_field: description (a long org id makes long keys)")

    def _create(self, order: PurchaseOrder, key: str, supplier: int) -> dict[str, Any]:
        body: dict[str, Any] = {"supplier": supplier, "supplier_reference": "",
                                "description": f"restock order {order.order_id} for {order.org}"}
        body[self.settings.key_field] = key if self.settings.key_field == "supplier_reference" \
            else f"{body['description']} [{key}]"
        if self.settings.destination is not None:
            body["destination"] = self.settings.destination
        po = self.http.request("POST", "order/po/", json=body, retry="unsent").json()
        if not isinstance(po, dict) or "pk" not in po:
            raise ConnectorError(SYSTEM, "creating a purchase order answered without pk")
        return po

    def _supplier_pk(self, name: str) -> int:
        found = [c for c in self.api.rows("company/", is_supplier="true") if c.get("name") == name]
        if len(found) != 1:
            raise ConnectorError(SYSTEM, f"supplier {name!r}: {len(found)} companies of that "
                                 "name (expected exactly one)")
        return found[0]["pk"]

    def _supplier_parts(self, supplier: int) -> list[dict[str, Any]]:
        return self.api.rows("company/part/", supplier=supplier)

    def _part_pks_by_sku(self, order: PurchaseOrder) -> dict[str, set[int]]:
        """Part pks per restock SKU, read once per order and only if a line needs them."""
        if all(line.supplier_sku for line in order.lines):
            return {}
        found: dict[str, set[int]] = defaultdict(set)
        for pk, part in self.api.by_pk("part/").items():
            found[self.api.sku(part)].add(pk)
        return found

    def _supplier_part_for(self, line: OrderLine, parts: list[dict[str, Any]],
                           part_pks: dict[str, set[int]]) -> dict[str, Any]:
        if line.supplier_sku:
            match = [sp for sp in parts if sp.get("SKU") == line.supplier_sku]
        else:
            match = [sp for sp in parts if sp.get("part") in part_pks.get(line.sku, ())]
        if not match:
            raise ConnectorError(SYSTEM, f"no supplier part of {line.supplier!r} for "
                                 f"sku {line.sku!r} (supplier_sku {line.supplier_sku!r})")
        return match[0]

    def _add_line(self, po: dict, line: OrderLine, sp: dict, pack: float, currency: str) -> None:
        packs = max(1, math.ceil(round(line.quantity / pack, 9)))
        body: dict[str, Any] = {"order": po["pk"], "part": sp["pk"], "quantity": packs,
                                "reference": line.sku, "merge_items": False,
                                "auto_pricing": self.settings.auto_pricing,
                                "purchase_price_currency": currency}
        if not self.settings.auto_pricing:
            body["purchase_price"] = f"{line.unit_price * pack:.6f}"
        self.http.request("POST", "order/po-line/", json=body, retry="unsent")


inventory_source = InvenTreeSource
order_sink = InvenTreeOrderSink
