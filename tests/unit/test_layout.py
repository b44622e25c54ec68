"""Tripwires for the source-root layout (DESIGN.md §1)."""

from __future__ import annotations

import platform
import sysconfig
from pathlib import Path

import restock
import restock_connectors

ROOT = Path(__file__).resolve().parents[2]


def test_platform_is_the_standard_library_module():
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert callable(platform.python_version)


def test_source_roots_are_not_packages():
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not (ROOT / "connectors" / "__init__.py").exists()


def test_packages_import_from_the_source_roots():
    assert Path(restock.__file__).resolve().parent == ROOT / "platform" / "restock"
    assert Path(restock_connectors.__file__).resolve().parent == \
        ROOT / "connectors" / "restock_connectors"


def test_the_public_names_resolve_and_heavy_ones_load_lazily():
    import subprocess
    import sys

    code = ("import sys, restock; assert 'restock.cycle' not in sys.modules; "
            "[getattr(restock, n) for n in restock.__all__]; "
            "assert 'restock.cycle' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
