"""Run every benchmark module of this package (or those named on the command line)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                   if not m.name.startswith("_"))
    failed = 0
    for name in names or found:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue
        try:
            module.main()
        except Exception as err:  # noqa: BLE001 - one broken benchmark must not hide the others
            print(f"bench {name}: failed: {err.__class__.__name__}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
