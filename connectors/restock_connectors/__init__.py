"""restock's own connectors, one module per external system (registered in pyproject.toml)."""
