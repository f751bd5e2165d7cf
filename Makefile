# The two commands of the README:
#   make run    set up (idempotent) and run fsd with an embedded Pulsar standalone
#   make test   set up (idempotent) and run the whole test suite
PYTHON ?= python3

.PHONY: setup run test unit lint format examples perf

setup:
	PYTHON=$(PYTHON) scripts/setup.sh

run: setup
	$(PYTHON) -m fsd

# The tests build every example from source (tests/conformance), so the setup
# installs the toolchains too.
test:
	FS_SETUP_TOOLCHAINS=1 PYTHON=$(PYTHON) scripts/setup.sh
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest

unit:
	$(PYTHON) -m pytest tests/unit

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

examples:
	scripts/toolchains.sh
	scripts/build-examples.sh

# Install the systemd units, the user and /etc/function-stream/fsd.toml (as root).
# Flags: make install-systemd INSTALL_SYSTEMD_FLAGS="--dry-run --separate-broker"
.PHONY: install-systemd
install-systemd:
	scripts/install-systemd.sh $(INSTALL_SYSTEMD_FLAGS)
