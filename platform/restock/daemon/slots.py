"""Exactly one run per org and scheduled slot, however many daemon replicas share the store.

Every replica schedules every org. When a slot fires, a replica first takes the org's lock
(a PostgreSQL session advisory lock, held for the whole run; an in-process lock on SQLite) and
then claims the slot by inserting ``(org, slot)`` into ``daemon_slot_claims``, whose primary key
lets only one insert win. A replica that finds the slot already claimed does nothing — unless
the claim is still ``running`` while the org's advisory lock is free: its owner died (PostgreSQL
drops a dead session's locks), so this replica takes the slot over. The order ledger's
idempotency keys make that re-run safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from restock.errors import ConfigError, Fatal

metadata = sa.MetaData()

slot_claims = sa.Table(
    "daemon_slot_claims", metadata,
    sa.Column("org", sa.String(64), primary_key=True),
    sa.Column("slot", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),         # scheduled | manual
    sa.Column("replica", sa.String(120), nullable=False),
    # running | ok | partial | failed | error | abandoned
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Index("ix_daemon_slot_claims_claimed_at", "org", "claimed_at"),
)

RUNNING = "running"
ABANDONED = "abandoned"     # the daemon stopped at its shutdown timeout with this run in flight
_UNFINISHED = (RUNNING, ABANDONED)
HELD, RUNNING_HERE, ELSEWHERE = "held", "running_here", "elsewhere"     # org_lock's answers


@dataclass(frozen=True)
class Claim:
    """A slot this replica owns and must finish."""

    org: str
    slot: str
    replica: str
    taken_over_from: str | None = None


def slot_key(when: datetime) -> str:
    """The stable name of a scheduled slot: its UTC instant, to the second."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lock_key(org: str) -> int:
    digest = hashlib.sha256(f"restock-org\x1f{org}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SlotLedger:
    """Claims of (org, slot) in the state database, plus the per-org run lock."""

    def __init__(self, url: str, *, replica: str, pool_size: int = 5) -> None:
        self.replica = replica
        self.engine = _engine(url, pool_size)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._local_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # SQLite has one writer at a time and makes the others sleep and retry; taking turns in
        # the process first keeps the daemon's own threads out of that back-off.
        self._writing = contextlib.nullcontext() if self.is_postgres else threading.Lock()
        try:
            migrate(self.engine)
        except OperationalError as err:
            self.engine.dispose()
            shown = self.engine.url.render_as_string(hide_password=True)
            raise Fatal(f"state store {shown} unreachable: "
                        f"{str(err.orig).strip().splitlines()[0]}") from None

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def org_lock(self, org: str) -> Iterator[str]:
        """Try to hold the org's run lock for the block; yields HELD, or who has it instead:
        RUNNING_HERE (a run in this process) or ELSEWHERE (another replica, or `restock run`)."""
        local = self._local_lock(org)
        if not local.acquire(blocking=False):
            yield RUNNING_HERE
            return
        try:
            with self._across_processes(org) as held:
                yield HELD if held else ELSEWHERE
        finally:
            local.release()

    def _across_processes(self, org: str):
        if self.engine.dialect.name == "postgresql":      # the engine in use, as it is now
            return advisory_lock(self.engine, org)
        return sqlite_org_lock(self.engine.url.database, org)

    def is_running_here(self, org: str) -> bool:
        return self._local_lock(org).locked()

    def claim(self, org: str, slot: str, kind: str) -> Claim | None:
        """Own (org, slot) or learn that another replica does (None). Call under org_lock."""
        now = datetime.now(UTC)
        try:
            with self._writing, self.engine.begin() as conn:
                conn.execute(slot_claims.insert().values(
                    org=org, slot=slot, kind=kind, replica=self.replica, status=RUNNING,
                    claimed_at=now))
            return Claim(org, slot, self.replica)
        except IntegrityError:
            return self._take_over_if_orphaned(org, slot)

    def is_claimed(self, org: str, slot: str) -> bool:
        """Whether some replica has claimed (org, slot)."""
        query = sa.select(slot_claims.c.org).where(slot_claims.c.org == org,
                                                   slot_claims.c.slot == slot)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def _take_over_if_orphaned(self, org: str, slot: str) -> Claim | None:
        # Only PostgreSQL can tell a dead owner (its advisory lock vanished) from a live one;
        # the caller holds that lock now, so an unfinished claim has no live owner.
        if not self.is_postgres:
            return None
        with self._writing, self.engine.begin() as conn:
            owner = conn.execute(sa.select(slot_claims.c.replica).where(
                slot_claims.c.org == org, slot_claims.c.slot == slot,
                slot_claims.c.status.in_(_UNFINISHED))).scalar()
            if owner is None:
                return None
            taken = conn.execute(slot_claims.update().where(
                slot_claims.c.org == org, slot_claims.c.slot == slot,
                slot_claims.c.replica == owner, slot_claims.c.status.in_(_UNFINISHED),
            ).values(replica=self.replica, status=RUNNING,
                     detail=f"taken over from {owner}")).rowcount
        return Claim(org, slot, self.replica, taken_over_from=owner) if taken == 1 else None

    def finish(self, claim: Claim, status: str, *, run_id: str | None = None,
               detail: str | None = None) -> None:
        """Record how the claimed slot ended (a takeover's note stays unless ``detail`` is given)."""
        values = {"status": status, "run_id": run_id, "finished_at": datetime.now(UTC)}
        if detail is not None:
            values["detail"] = detail
        with self._writing, self.engine.begin() as conn:
            conn.execute(slot_claims.update().where(
                slot_claims.c.org == claim.org, slot_claims.c.slot == claim.slot,
                slot_claims.c.replica == claim.replica).values(**values))

    def latest(self) -> dict[str, dict]:
        """The most recent claim of every org (for status): org -> row as a dict."""
        ranked = sa.select(slot_claims, sa.func.row_number().over(
            partition_by=slot_claims.c.org,
            order_by=slot_claims.c.claimed_at.desc()).label("rank")).subquery()
        query = sa.select(ranked).where(ranked.c.rank == 1)
        with self.engine.connect() as conn:
            return {row.org: dict(row._mapping) for row in conn.execute(query)}

    def claims(self, org: str | None = None) -> list[dict]:
        """Every claim (oldest first), optionally for one org."""
        query = sa.select(slot_claims).order_by(slot_claims.c.claimed_at)
        if org is not None:
            query = query.where(slot_claims.c.org == org)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def _local_lock(self, org: str) -> threading.Lock:
        with self._guard:
            return self._local_locks.setdefault(org, threading.Lock())


@contextmanager
def sqlite_org_lock(database: str | None, org: str) -> Iterator[bool]:
    """The org's run lock beside a SQLite state file: an exclusive ``flock`` on
    ``<file>.<org>.lock``, dropped by the system when its holder exits, however it exits.
    Yields whether it is held (always True for an in-memory database or where there is no
    ``flock``: nothing else can share those)."""
    try:
        import fcntl
    except ImportError:                 # pragma: no cover - not a POSIX system
        yield True
        return
    if not database or database == ":memory:":
        yield True
        return
    path = Path(f"{database}.{hashlib.sha256(org.encode()).hexdigest()[:16]}.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def org_run_lock(url: str, org: str) -> Iterator[bool]:
    """The run lock the daemon takes for ``org``, for a run started elsewhere (`restock run`):
    yields whether it is held. PostgreSQL: the same session advisory lock; SQLite: the lock
    file beside the database."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        lock = advisory_lock(engine, org) if engine.dialect.name == "postgresql" else \
            sqlite_org_lock(engine.url.database, org)
        with lock as held:
            yield held
    finally:
        engine.dispose()


@contextmanager
def advisory_lock(engine: sa.Engine, org: str) -> Iterator[bool]:
    """The org's PostgreSQL session advisory lock for the block (PostgreSQL drops it with a
    dead session); yields whether it is held."""
    key = _lock_key(org)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        held = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield held
        finally:
            if held:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        conn.close()


def migrate(engine: sa.Engine) -> None:
    """Bring the daemon's table up to date with its Alembic migrations (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":    # replicas starting together migrate once
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                         {"k": _lock_key("\x00daemon-migrations")})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _engine(url: str, pool_size: int) -> sa.Engine:
    try:
        sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}", field="state_url") from None
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (status, readiness) work beside a writer; in WAL mode NORMAL sync keeps
    # the file consistent on a crash and only an OS crash may lose the last claims.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ensure_sqlite_folder(url: str) -> None:
    database = sa.make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
