# adGAN — build, demo, test. Every target sets itself up on demand.
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
CARGO ?= cargo
BIN := target/release/adgan
PREFIX ?= /usr/local

.PHONY: all build demo test bootstrap clean install header

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

# The C API's package: lib/libadgan.so (SONAME), include/adgan.h, the CMake
# package (find_package(adgan)) and adgan.pc under PREFIX; relocatable.
install: build
	cmake/install.sh "$(PREFIX)"

# Regenerate include/adgan.h from src/ffi/ (cbindgen; commit the result).
header: bootstrap
	ADGAN_WRITE_HEADER=1 $(CARGO) test --release --locked --test header
