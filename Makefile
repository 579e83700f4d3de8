# neutrino: on a fresh Debian 12 machine, as root:
#   make run    install everything, start the service
#   make test   install everything, run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
STATE_DIR ?= $(or $(NEUTRINO_STATE_DIR),/var/lib/neutrino)
NEUTRINO := $(VENV)/bin/neutrino

.PHONY: install run test down status check-config help

help:
	@echo "make install   Debian packages + $(VENV) (fast when already done)"
	@echo "make run       install, then start neutrino (state in STATE_DIR=$(STATE_DIR))"
	@echo "make test      install, then run the whole test suite (scripts/test.sh)"
	@echo "make status    neutrino status"
	@echo "make down      stop what make run started"

install:
	@NEUTRINO_VENV=$(abspath $(VENV)) bash scripts/install.sh

run: install
	@$(NEUTRINO) up --state-dir $(STATE_DIR)
	@echo "Also: make status, make down (or $(abspath $(NEUTRINO)) --help)"

test: install
	@NEUTRINO_VENV=$(abspath $(VENV)) bash scripts/test.sh

status:
	@$(NEUTRINO) status --state-dir $(STATE_DIR)

down:
	@$(NEUTRINO) down --state-dir $(STATE_DIR)

check-config:
	@$(NEUTRINO) check-config --state-dir $(STATE_DIR)
