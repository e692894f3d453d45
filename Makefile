# trustseal — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export TRUSTSEAL_HOME ?= $(CURDIR)/var

.PHONY: run test lint unit bench soak sysdeps install dev clean

# Debian packages the project needs: Botan (constant-time SM2 signer).
SYSTEM_PACKAGES := libbotan-2-19
# Test-only: independent checkers (qpdf, poppler pdfsig, Bouncy Castle for CMS), SoftHSM2 (PKCS#11 custody).
TEST_PACKAGES := qpdf poppler-utils libbcprov-java libbcpkix-java libbcutil-java openjdk-17-jre-headless softhsm2

sysdeps:
	@bash scripts/sysdeps.sh $(SYSTEM_PACKAGES)

$(VENV)/.installed: pyproject.toml gm/_sm2verify.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: sysdeps $(VENV)/.installed
dev: sysdeps $(VENV)/.installed-dev
	@bash scripts/sysdeps.sh $(TEST_PACKAGES)

run: install
	$(BIN)/trustseal init --if-needed
	$(BIN)/trustseal serve --host $(HOST) --port $(PORT)

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: dev
	$(BIN)/pytest -n 2 -q

test: lint unit

bench: dev
	@bash scripts/sysdeps.sh wrk
	$(BIN)/python -m bench

soak: dev
	TRUSTSEAL_SOAK=1 $(BIN)/pytest -n 2 -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
