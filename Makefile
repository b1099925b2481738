# adGAN — build, demo, test. Every target sets itself up on demand.
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
CARGO ?= cargo
BIN := target/release/adgan

.PHONY: all build demo test bootstrap clean

all: build

bootstrap: $(VENV)/.bootstrapped
$(VENV)/.bootstrapped: scripts/bootstrap.sh scripts/requirements.txt
	scripts/bootstrap.sh

build: bootstrap
	$(CARGO) build --release --locked

demo: build
	$(BIN) demo --out demo-output

test: bootstrap
	scripts/test.sh

clean:
	$(CARGO) clean
