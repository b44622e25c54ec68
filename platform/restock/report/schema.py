"""The versioned JSON schema of RunSummary, kept in docs/summary-schema.json.

Regenerate after changing the model: ``python -m restock.report.schema docs/summary-schema.json``.
A test fails when the file and the model disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from restock.domain import RunSummary

SCHEMA_ID = "https://restock.invalid/schemas/run-summary.json"


def summary_schema() -> dict[str, Any]:
    """The JSON schema of RunSummary with its version (the model's ``schema_version`` default)."""
    schema = RunSummary.model_json_schema(mode="serialization")
    version = RunSummary.model_fields["schema_version"].default
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "x-schema-version": version, **schema}


def schema_text() -> str:
    """The schema as the file holds it (sorted keys, two-space indent, final newline)."""
    return json.dumps(summary_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    target = Path((argv or sys.argv[1:] or ["docs/summary-schema.json"])[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
