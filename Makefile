# demandops: `make run` runs the whole chain, `make test` runs the tests. Both install on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test ui serve clean lint constraints

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "demandops needs Python 3.11, not " + sys.version.split()[0])'
	@echo "installing demandops and the pinned versions of its dependencies into $(VENV) (once; about 2 minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# -qq: errors only; pip's notes on this machine's index settings are not the user's to act on
	@$(BIN)/python -m pip install -qq -c constraints.txt pip
	@$(BIN)/python -m pip install -qq -c constraints.txt -e ".[dev,cluster]"
	@# Bentos run under -O (serving/server.py, bento_env): its bytecode compiled once here, not at every
	@# start where none is written. A file that does not compile (a package's test data) is compiled, and
	@# refused, where it is imported, as without this step.
	@$(BIN)/python -O -m compileall -q -j 0 $(VENV)/lib/python3.11/site-packages >/dev/null || true
	@# nginx (Debian's package) fronts `demandops deploy`; installed here where this user may, else named
	@command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && echo "installing nginx (Debian's package) for demandops deploy" \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 \
	  || echo "note: demandops deploy and its test need nginx: install your system's nginx package"; }
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the whole chain on the embedded default data
	@$(BIN)/demandops run

test: $(STAMP)  ## every test, the end-to-end chain included
	$(BIN)/pytest

ui: $(STAMP)  ## Dagster UI on :3001 and MLflow UI on :5000
	$(BIN)/demandops ui

serve: $(STAMP)  ## the Production Bento (or the newest Staged one) on :3000
	$(BIN)/demandops serve

clean:  ## remove all runtime state (MLflow, Feast, Dagster, Bento stores)
	rm -rf state

lint: $(STAMP)
	$(BIN)/ruff check .

constraints: $(STAMP)  ## re-pin constraints.txt from the current environment
	{ echo "# Exact versions demandops was tested with (pip freeze of the project venv)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -vE '^(setuptools|wheel)==' \
	    | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt
