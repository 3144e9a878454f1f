# gvmi-test: everything from a fresh Debian bookworm machine in two commands.
#   make demo   installs what is missing, builds the runtime, builds an example image and runs it
#   make test   the same set-up, then every test (C unit tests, TypeScript unit + integration)
# Costly artefacts (kernel, debootstrap rootfs) are cached by content hash under
# $(CACHE); a second run reuses them.

SHELL := /bin/bash
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gvmi-test
export GVMI_TEST_CACHE := $(CACHE)
CC_TEST ?= gcc

.PHONY: all deps node build runtime pack test test-c test-ts test-examples fuzz test-heavy demo bench clean

all: build runtime

deps:
	@bash scripts/install-deps.sh

# npm ci only when the lockfile changed since the last install.
node_modules/.installed: package-lock.json | deps
	npm ci --no-audit --no-fund
	@touch $@

node: node_modules/.installed

# tsc only when a source or the configuration changed since the last build: test-ts and
# test-examples each ask for build. The stamp lives in dist/ (gone with it) and carries the time
# the compile started, so an edit made during it builds again next time.
TS_SOURCES := $(shell find src -name '*.ts')
build: node dist/.built

dist/.built: $(TS_SOURCES) tsconfig.json tsconfig.build.json node_modules/.installed
	@start=$$(date +%s.%N); \
	npx tsc -p tsconfig.build.json && chmod +x dist/cli/main.js && touch -d "@$$start" $@

runtime: deps
	@bash runtime/build.sh

# The npm package, guest runtime included (package.json prepack: a clean build, then
# scripts/stage-runtime.ts puts the kernel, initramfs and tsc-khz under dist/runtime).
pack: deps node
	npm pack --no-audit --no-fund

test-c: deps
	@mkdir -p .tmp
	$(CC_TEST) -std=gnu11 -Wall -Wextra -Werror -fsanitize=address,undefined \
	  -o .tmp/wire_test runtime/init/test/wire_test.c runtime/init/wire.c runtime/init/splice_out.c
	set -o pipefail; ./.tmp/wire_test | tee .tmp/wire_test.txt

# Incremental: tsc re-checks what changed since the last typecheck (its state in .tmp/).
test-ts: build runtime
	@mkdir -p .tmp
	npx tsc --noEmit -p . --incremental --tsBuildInfoFile .tmp/typecheck.tsbuildinfo
	npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json

# Each example is a runnable project; its suite runs with this checkout's gvmi-test and vitest.
EXAMPLES := $(patsubst %/vitest.config.ts,%,$(wildcard examples/*/vitest.config.ts))
test-examples: build runtime
	@mkdir -p .tmp
	@for ex in $(EXAMPLES); do \
	  echo "== $$ex"; \
	  (cd $$ex && npx vitest run --reporter=default --reporter=json --outputFile.json=$(CURDIR)/.tmp/vitest-$$(basename $$ex).json) || exit 1; \
	done

# All suites run even when one fails; the last line sums them up for CI logs.
test: deps
	@status=0; \
	$(MAKE) --no-print-directory test-c || status=1; \
	rm -f .tmp/vitest*.json; \
	$(MAKE) --no-print-directory test-ts || status=1; \
	$(MAKE) --no-print-directory test-examples || status=1; \
	node scripts/test-summary.mjs .tmp/wire_test.txt .tmp/vitest*.json; \
	exit $$status

# Heavier variants of the reliability tests (docs/reliability.md). `make test` fuzzes each target
# for up to 10,000 cases or 20 s of work, whichever ends first; this runs all 200,000, untimed.
fuzz: build
	GVMI_TEST_FUZZ_CASES=$${GVMI_TEST_FUZZ_CASES:-200000} GVMI_TEST_FUZZ_SECONDS=$${GVMI_TEST_FUZZ_SECONDS:-0} npx vitest run test/unit/fuzz

test-heavy: build runtime
	GVMI_TEST_HEAVY=1 npx vitest run test/integration/faults.test.ts

demo: build runtime
	@bash examples/hello/demo.sh

bench: build runtime
	npx tsx bench/bench.ts

clean:
	rm -rf dist .tmp runtime/.build
