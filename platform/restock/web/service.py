"""What the review page and the API share: the store, the org files, who is asking, and a run's
summary as it stands now (each order with its current status in the ledger)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from restock.config import OrgConfig, load_orgs
from restock.domain import PurchaseOrder, RunSummary
from restock.errors import ConfigError, RestockError
from restock.log import get_logger
from restock.store import OrderStatus, Store
from restock.store.runs import no_summary_reason
from restock.web.access import Access, GuessLimit, Role, User, load_access, session_user

log = get_logger("restock.review")
SESSION_COOKIE = "restock_session"


class NotAllowed(RestockError):
    """The user has no (or too small a) role in the org."""


class NotFound(RestockError):
    """No such run, order or format (for this user: an org they cannot see does not exist)."""


@dataclass
class Review:
    """The review service's state: one store, one config folder, the access file (re-read
    when it changes on disk, so adding a user needs no restart)."""

    store: Store
    config_dir: Path
    guesses: GuessLimit = field(default_factory=GuessLimit)   # wrong tokens per address
    _access: Access = field(default_factory=Access)
    _stamp: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def access(self) -> Access:
        path = self.config_dir / "access.yaml"
        stamp = path.stat().st_mtime if path.is_file() else None
        with self._lock:
            if stamp != self._stamp:
                self._reload(stamp)
            return self._access

    def _reload(self, stamp: float | None) -> None:
        try:
            self._access = load_access(self.config_dir)
        except ConfigError as err:
            # Keep who could get in before: a typo must not lock everyone out (or let anyone in).
            log.error("review.access_invalid", error=str(err))
        self._stamp = stamp

    def org_config(self, org: str) -> OrgConfig:
        """The valid config of ``org`` (approving sends through its order sink)."""
        configs, errors = load_orgs(self.config_dir)
        if org in configs:
            return configs[org]
        problem = next((e for e in errors if e.file and Path(e.file).stem == org), None)
        raise problem or RestockError(f"no org file for {org!r} in {self.config_dir}")

    def orgs_for(self, user: User) -> list[str]:
        """Orgs with runs or an org file that the user may see."""
        known = set(self.store.runs.orgs()) | _org_ids(self.config_dir)
        return sorted(org for org in known if user.role(org) is not None)


def _org_ids(folder: Path) -> set[str]:
    try:
        configs, _ = load_orgs(folder)
    except ConfigError:
        return set()
    return set(configs)


def review(request: Request) -> Review:
    return request.app.state.review


def current_user(request: Request) -> User | None:
    """The user a bearer token or the session cookie names (None: not logged in).

    A wrong bearer token counts against the caller's address (see :func:`token_user`)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return token_user(request, auth[7:].strip())
    return session_user(review(request).access(), request.cookies.get(SESSION_COOKIE))


def token_user(request: Request, token: str) -> User | None:
    """The user whose token this is; a wrong one is counted against the caller's address."""
    service, address = review(request), client_address(request)
    user = service.access().by_token(token)
    if user is None:
        service.guesses.missed(address)
    else:
        service.guesses.passed(address)
    return user


def guess_wait(request: Request) -> float:
    """Seconds this caller must wait before trying a token again (0: now)."""
    return review(request).guesses.wait(client_address(request))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def require(user: User, org: str, role: Role = Role.VIEWER) -> None:
    if not user.may(org, role):
        need = "approve in" if role == Role.APPROVER else "see"
        raise NotAllowed(f"{user.name} may not {need} org {org!r}")


def requested_summary(request: Request, user: User) -> RunSummary:
    """The summary of the run named in the path, if ``user`` may see its org."""
    run_id = request.path_params["run_id"]
    runs = review(request).store.runs
    summary = runs.summary(run_id)
    if summary is None:
        record = runs.record(run_id)
        if record is not None:      # say why only to someone who may see the org's runs
            require(user, record.org)
        raise NotFound(no_summary_reason(run_id, record))
    require(user, summary.org)
    return summary


def live_summary(store: Store, summary: RunSummary) -> RunSummary:
    """The run's summary with every order's current status; a held order someone decided on
    moves from "held" to the orders (with the quantities approved)."""
    current = {o.order_id: _current(store, o) for o in (*summary.orders, *summary.held)}
    orders = [current[o.order_id] for o in summary.orders]
    listed = {o.order_id for o in orders}
    held = [current[o.order_id] for o in summary.held]
    still = [o for o in held if o.status == OrderStatus.HELD]
    decided = [o for o in held if o.status != OrderStatus.HELD and o.order_id not in listed]
    return summary.model_copy(update={"orders": orders + decided, "held": still})


def _current(store: Store, order: PurchaseOrder) -> PurchaseOrder:
    entry = store.ledger.find(order.order_id)
    if entry is None:      # a dry run's orders never reach the ledger
        return order
    if entry.status == OrderStatus.HELD:
        return order.model_copy(update={"status": str(entry.status)})
    return entry.order.model_copy(update={"status": str(entry.status)})


def entry_json(entry: Any) -> dict[str, Any]:
    """One ledger order for the API."""
    return {"order_id": entry.order_id, "org": entry.org, "run_id": entry.run_id,
            "status": str(entry.status), "supplier": entry.supplier,
            "currency": entry.order.currency, "total": round(entry.order.total, 2),
            "external_id": entry.external_id, "detail": entry.detail,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
            "lines": [{"sku": ln.sku, "quantity": ln.quantity, "unit_price": ln.unit_price,
                       "value": round(ln.value, 2)} for ln in entry.order.lines]}
