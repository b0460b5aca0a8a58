# Single entry point. `make setup` installs everything (idempotent, fast when
# done); `make test` runs the whole suite; `make demo` shows a real stuck release.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COLLECTION_LINK := .collections/ansible_collections/helmops/recovery

IMPORTER_STAMP := .venv-importer/.installed

.PHONY: help setup ends binaries cluster cluster-down demo test lint unit integration molecule sanity importer versions fixtures bench

help:
	@echo "make setup         install the venv, control-plane binaries and Helm 3/4 (no services started)"
	@echo "make cluster       start (or reuse) the local control plane; KUBECONFIG=.cluster/kubeconfig"
	@echo "make cluster-down  stop it and remove its data"
	@echo "make demo          drive release 'demo' into a real stuck pending-upgrade and show it"
	@echo "make test          the whole test suite (lint, unit, sanity, importer, versions, integration, molecule)"
	@echo "make bench         fleet benchmark against Helm (R=1000 H=10; QUICK=1 for a smoke run); see docs/performance.md"

setup: $(STAMP) binaries $(COLLECTION_LINK)

# The support matrix's ends' venvs (.venv-floor, .venv-newest; Python 3.10 and 3.12 from pyenv or PATH): make
# versions tests on them, and the integration suite's worker drives the newest ansible-core when it is there.
ends: $(STAMP)
	hack/versions-test --install

$(STAMP): requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

binaries:
	@hack/install-binaries

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

cluster: setup
	hack/cluster up

cluster-down:
	hack/cluster down

demo: cluster
	@hack/demo

lint: setup
	$(BIN)/ruff check plugins tests hack
	$(BIN)/ruff format --check plugins tests hack
	$(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ansible-lint

unit: setup
	$(BIN)/pytest tests/unit -q

sanity: setup
	hack/sanity

# galaxy-importer on the built tarball, as Galaxy and Automation Hub run it on upload.
$(IMPORTER_STAMP): requirements-importer.txt
	python3 -m venv .venv-importer
	.venv-importer/bin/pip install --quiet --disable-pip-version-check -r requirements-importer.txt
	touch $@

importer: setup $(IMPORTER_STAMP)
	hack/galaxy-importer

# The support matrix's ends: ansible-core 2.17 on Python 3.10 and ansible-core 2.21 on Python 3.12.
versions: setup ends
	hack/versions-test

integration: cluster
	hack/integration

# The roles' molecule scenarios (extensions/molecule/), against the local control plane.
molecule: cluster
	PATH="$(CURDIR)/$(BIN):$$PATH" hack/molecule

# Every target above; the checks that need no cluster run beside the integration suite (hack/test says how).
test:
	hack/test

# Re-capture the recorded real records used by the unit tests.
fixtures: cluster
	$(BIN)/python hack/capture-fixtures

# Fleet-scale benchmark against Helm itself (docs/performance.md).
# R= releases, H= revisions each; QUICK=1 is a tiny smoke run.
R ?= 1000
H ?= 10
bench: cluster
	hack/bench --releases $(R) --revisions $(H) $(if $(QUICK),--quick)
