# Schildwacht: the two quick-start commands are `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench services env env-dev clean

demo: env
	$(VENV)/bin/schildwacht demo

test: env-dev services
	bash scripts/test.sh

bench: env-dev services
	$(PY) -m loadtests.bench
	$(PY) -m loadtests.bench_geofence --docs
	$(PY) -m loadtests.bench_supervision --docs

# Install what the test suite needs on this machine and start services that are down.
services:
	bash scripts/services.sh

env:
	bash scripts/env.sh

env-dev:
	bash scripts/env.sh dev

clean:
	rm -rf $(VENV) *.egg-info test-artifacts
