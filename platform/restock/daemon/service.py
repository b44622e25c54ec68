"""``restock daemon``: wire settings, store, scheduler and HTTP together and run until a signal."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from restock.config import org_files
from restock.daemon.core import Daemon, Runner
from restock.daemon.http import HttpServer, create_daemon_app
from restock.daemon.slots import SlotLedger
from restock.errors import ConfigError, RestockError
from restock.forecast.io import one_blas_thread
from restock.log import get_logger
from restock.settings import Settings

log = get_logger("restock.daemon")


def default_runner() -> Runner:
    """The cycle (``restock.cycle.run_org``)."""
    try:
        from restock.cycle import run_org
    except ImportError as err:
        raise RestockError(f"the cycle is not available in this installation ({err})") from None
    return run_org


def open_state(url: str) -> Any:
    """The state store the cycle writes to (``restock.store.open_store``)."""
    try:
        from restock.store import open_store
    except ImportError as err:
        raise RestockError(f"the state store is not available in this installation ({err})") \
            from None
    return open_store(url)


def review_app(store: Any, settings: Settings) -> Any:
    """The review API and page, when this installation has them (mounted beside /healthz)."""
    try:
        from restock.api import create_app
    except ImportError:
        return None
    try:
        return create_app(store=store, config_dir=settings.config_dir)
    except TypeError:
        return create_app(store)


def run_daemon(settings: Settings, *, runner: Runner | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a graceful stop)."""
    org_files(settings.config_dir)      # a missing config folder is a mistake to report now
    one_blas_thread()
    url = settings.resolved_state_url()
    store = open_state(url)
    ledger = SlotLedger(url, replica=settings.replica_id,
                        pool_size=settings.max_parallel_orgs + 2)
    daemon = Daemon(settings, runner=runner or default_runner(), store=store, ledger=ledger)
    server = _server(daemon, store, settings)
    stop = threading.Event()
    _on_signals(stop)
    server.start()
    daemon.start()
    log.info("daemon.listening", url=server.url, config_dir=str(settings.config_dir))
    while not stop.wait(settings.reload_interval_seconds):
        daemon.reload()
    clean = daemon.stop()
    server.stop()
    ledger.close()
    _close(store)
    if not clean:          # pool threads still in a run would block interpreter exit
        sys.stderr.flush()
        os._exit(0)
    return 0


def _server(daemon: Daemon, store: Any, settings: Settings) -> HttpServer:
    host, port = settings.health_host_port
    app = create_daemon_app(daemon, extra_app=review_app(store, settings))
    try:
        return HttpServer(app, host, port)
    except OSError as err:
        raise ConfigError(f"cannot listen on {settings.health_addr} ({err.strerror})",
                          field="health_addr") from None


def _on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _close(store: Any) -> None:
    for name in ("close", "dispose"):
        closer = getattr(store, name, None)
        if callable(closer):
            closer()
            return
