# gvmi-test: everything from a fresh Debian bookworm machine in two commands.
#   make demo   installs what is missing, builds the runtime, builds an example image and runs it
#   make test   the same set-up, then every test (C unit tests, TypeScript unit + integration)
# Costly artefacts (kernel, debootstrap rootfs) are cached by content hash under
# $(CACHE); a second run reuses them.

SHELL := /bin/bash
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gvmi-test
export GVMI_TEST_CACHE := $(CACHE)
CC_TEST ?= gcc

.PHONY: all deps node build runtime test test-c test-ts demo bench clean

all: build runtime

deps:
	@bash scripts/install-deps.sh

# npm ci only when the lockfile changed since the last install.
node_modules/.installed: package-lock.json | deps
	npm ci --no-audit --no-fund
	@touch $@

node: node_modules/.installed

build: node
	npx tsc -p tsconfig.build.json
	@chmod +x dist/cli/main.js

runtime: deps
	@bash runtime/build.sh

test-c: deps
	@mkdir -p .tmp
	$(CC_TEST) -std=gnu11 -Wall -Wextra -Werror -fsanitize=address,undefined \
	  -o .tmp/wire_test runtime/init/test/wire_test.c runtime/init/wire.c
	./.tmp/wire_test

test-ts: build runtime
	npx tsc --noEmit -p .
	@mkdir -p .tmp
	npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json; \
	  status=$$?; node scripts/test-summary.mjs .tmp/vitest.json; exit $$status

test: test-c test-ts

demo: build runtime
	@bash examples/hello/demo.sh

bench: build runtime
	npx tsx bench/boot-time.ts

clean:
	rm -rf dist .tmp runtime/.build
