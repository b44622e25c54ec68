"""A fork server that runs restock cycles in child processes and kills them with SIGKILL.

Started once per test (``python -m tests.support.crash_harness``) so the heavy imports happen
once; each command forks a fresh child that loads the org file, opens the state store and runs
the cycle, exactly as ``restock run`` does. A child dies by ``kill -9``:

- at a named step (``kill_step`` = the N-th hook point it reaches: ledger writes, sink calls,
  each before and after), killing itself so the point is exact; or
- after ``kill_after`` seconds, killed by this server, wherever the child happens to be.

Protocol: one JSON command per stdin line, one JSON answer per stdout line::

    {"config": PATH, "state": URL, "trace": PATH, "kill_step": 7, "kill_after": null}
    -> {"killed": true, "exit": null, "steps": 7}
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # no BLAS threads across fork()
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

HOOKED = {
    ("restock.store.ledger", "Ledger"): ("record", "transition"),
    ("restock_connectors.webhook", "WebhookOrderSink"): ("submit", "lookup"),
    ("restock_connectors.files", "FilesOrderSink"): ("submit", "lookup"),
    ("restock_connectors.csv", "CsvOrderSink"): ("submit", "lookup"),
    ("restock_connectors.inventree", "InvenTreeOrderSink"): ("submit", "lookup"),
}


def _warm() -> None:
    """Import what a cycle imports, before any fork."""
    import importlib

    for name in ("pandas", "numpy", "sqlalchemy", "alembic", "restock.cycle", "restock.planning",
                 "restock.forecast", "restock.policy", "restock.store", "restock.insight",
                 "restock.delivery", "restock.report", *{m for m, _ in HOOKED}):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _install_hooks(kill_step: int | None, trace: Path) -> None:
    import importlib

    counter = {"n": 0}
    out = trace.open("a", buffering=1)

    def point(name: str) -> None:
        counter["n"] += 1
        out.write(f"{counter['n']} {name}\n")
        if kill_step is not None and counter["n"] >= kill_step:
            out.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(cls: type, method: str) -> None:
        original = getattr(cls, method)

        def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
            label = f"{cls.__name__}.{method}"
            if method == "transition" and len(args) > 1:
                label += f"->{args[1]}"
            point(f"before {label}")
            result = original(self, *args, **kwargs)
            point(f"after {label}")
            return result
        setattr(cls, method, hooked)

    for (module, cls_name), methods in HOOKED.items():
        cls = getattr(importlib.import_module(module), cls_name)
        for method in methods:
            wrap(cls, method)


def _child(command: dict[str, Any]) -> None:
    from restock.config import load_org
    from restock.cycle import run_org
    from restock.store import open_store

    _install_hooks(command.get("kill_step"), Path(command["trace"]))
    config = load_org(command["config"])
    store = open_store(command["state"])
    run_org(config, store=store)


def _run(command: dict[str, Any]) -> dict[str, Any]:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            _child(command)
        except BaseException:  # noqa: BLE001 - the child reports by exit code (and its log)
            traceback.print_exc()
            code = 3
        os._exit(code)
    deadline = time.monotonic() + (command.get("kill_after") or 1e9)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            done, status = os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return {"killed": killed, "exit": None if killed else os.waitstatus_to_exitcode(status)}


def main() -> None:
    from restock.log import configure

    configure(json=True, level="ERROR")
    _warm()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
