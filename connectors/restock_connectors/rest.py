"""Generic JSON REST source: per-endpoint paths, dotted-path field mapping, pagination and auth.

YAML::

    source:
      connector: rest
      base_url: https://wms.example.com/api/v2
      auth: {kind: bearer, token: "${WMS_TOKEN}"}
      endpoints:
        catalog:
          path: /items
          pagination: {kind: cursor, items: data, next: meta.next_cursor}
          fields: {sku: code, description: attributes.name, category: attributes.group}
        positions:
          path: /stock
          pagination: {kind: offset, items: results, page_size: 200}
          fields: {sku: item.code, location: warehouse.code, on_hand: qty.available}
        history:
          path: /movements
          params: {type: issue, from: "{since}"}    # {since}: first history date wanted
          pagination: {kind: link}
          fields: {sku: item, location: warehouse, date: booked_at, quantity: qty}

``params`` are sent with every request of the endpoint; ``{since}`` in a value becomes the first
history date restock wants (ISO) and ``{org}`` the org id; a parameter using ``{since}`` is left
out when restock wants all history. ``fields`` maps each Snapshot column to a dotted path in one record (``a.b.0.c``); required
columns must be mapped, the others default. ``offers``, ``open_orders`` and ``promotions`` (the
promotion calendar: sku, date and optionally promotion 0/1) are optional.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from restock.connectors import ConnectorContext, InventorySource, Scope
from restock.domain import Snapshot
from restock.errors import ConnectorError
from restock.http import HttpClient, HttpOptions, HttpUrl, Pagination, client, dig
from restock_connectors._frames import COLUMNS, REQUIRED, conform, empty, narrow

SYSTEM = "rest"


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    pagination: Pagination = Pagination()
    fields: dict[str, str]


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="forbid")
    catalog: Endpoint
    positions: Endpoint
    history: Endpoint
    offers: Endpoint | None = None
    open_orders: Endpoint | None = None
    promotions: Endpoint | None = None

    @model_validator(mode="after")
    def _columns_known_and_required_mapped(self) -> Endpoints:
        for dataset in COLUMNS:
            endpoint = getattr(self, dataset)
            if endpoint is None:
                continue
            unknown = sorted(set(endpoint.fields) - set(COLUMNS[dataset]))
            missing = [c for c in REQUIRED[dataset] if c not in endpoint.fields]
            if unknown:
                raise ValueError(f"{dataset}.fields: unknown column(s) {', '.join(unknown)}")
            if missing:
                raise ValueError(f"{dataset}.fields: map the required column(s) "
                                 f"{', '.join(missing)}")
        return self


class RestSettings(HttpOptions):
    base_url: HttpUrl
    endpoints: Endpoints


class RestSource(InventorySource):
    """Reads each dataset from its endpoint and maps record fields to Snapshot columns."""

    Settings = RestSettings
    name = "rest"
    settings: RestSettings

    def __init__(self, settings: RestSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.http: HttpClient = client(settings.http_settings(settings.base_url), SYSTEM)

    def close(self) -> None:
        self.http.close()

    def pull(self, scope: Scope) -> Snapshot:
        frames: dict[str, pd.DataFrame] = {}
        for dataset in COLUMNS:
            endpoint = getattr(self.settings.endpoints, dataset)
            frames[dataset] = empty(dataset) if endpoint is None else \
                conform(self._read(dataset, endpoint, scope), dataset, SYSTEM)
        snapshot = Snapshot(as_of=date.today(), source=f"rest:{self.settings.base_url}",
                            **frames)
        return narrow(snapshot, scope)

    def _read(self, dataset: str, endpoint: Endpoint, scope: Scope) -> pd.DataFrame:
        path = endpoint.path.lstrip("/")
        params = self._params(endpoint, scope)
        rows = [self._map(dataset, endpoint, number, record) for number, record in
                enumerate(self.http.paginate(path, endpoint.pagination, params), 1)]
        return pd.DataFrame(rows, columns=list(endpoint.fields))

    def _params(self, endpoint: Endpoint, scope: Scope) -> dict[str, Any]:
        since = None if scope.since is None else pd.Timestamp(scope.since).date().isoformat()
        params: dict[str, Any] = {}
        for name, value in endpoint.params.items():
            if isinstance(value, str) and "{since}" in value and since is None:
                continue
            if isinstance(value, str):
                value = value.replace("{since}", since or "").replace("{org}", self.context.org)
            params[name] = value
        return params

    def _map(self, dataset: str, endpoint: Endpoint, number: int, record: Any) -> dict[str, Any]:
        where = f"{dataset} record {number} from {endpoint.path}"
        if not isinstance(record, dict):
            raise ConnectorError(SYSTEM, f"{where}: expected an object, got "
                                 f"{type(record).__name__}")
        row = {}
        for column, path in endpoint.fields.items():
            value = dig(record, path, system=SYSTEM, where=where)
            if isinstance(value, (dict, list)):
                raise ConnectorError(SYSTEM, f"{where}: field {path!r} is a "
                                     f"{type(value).__name__}, not a value")
            row[column] = value
        return row


inventory_source = RestSource
