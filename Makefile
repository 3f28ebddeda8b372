# The two commands of the README: `make test` and `make demo`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_DEPS := tests/emulator/conformance/node_modules/.installed

.PHONY: test lint typecheck pytest deploy-check demo clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest deploy-check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict daemon/sftriggerd

# Real peers nobody here wrote: the CometD JS client and faye (conformance tests).
$(NODE_DEPS): tests/emulator/conformance/package-lock.json
	npm ci --prefix tests/emulator/conformance --no-audit --no-fund --loglevel=error
	touch $(NODE_DEPS)

pytest: $(STAMP) $(NODE_DEPS)
	$(VENV)/bin/pytest

# Deployment files that need outside tools: the systemd unit (systemd-analyze) and the alert
# rules (promtool). The Dockerfile and the Kubernetes manifests are checked in tests/deploy/.
deploy-check: $(STAMP)
	bash deploy/check-systemd.sh
	bash deploy/check-prometheus.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The README's first command: emulator + sample receiver + daemon on SQLite, Ctrl-C stops.
demo: $(STAMP)
	$(VENV)/bin/sftriggerd demo
