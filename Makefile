# The README's commands. Everything is installed into .venv by these targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test,postgres]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/restock demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[test,postgres,bench]'
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m pip install -q ruff mypy
	$(VENV)/bin/ruff check platform connectors tests bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
