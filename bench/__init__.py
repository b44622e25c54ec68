"""restock's benchmarks: each module's ``main()`` measures one thing and writes
bench/results/<name>.json. ``python -m bench`` runs them all."""
