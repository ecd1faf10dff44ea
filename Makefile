# sendtrace: why sends fail.
SHELL := /bin/bash
# sudo resets PATH to one without Go's bin directory; find go there too,
# and hand its directory to everything make starts (tests build with go).
GO ?= $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go),go)
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
CLANG ?= clang-19
# Both are expanded only when a build recipe runs, never when make reads
# this file: on a fresh machine `make deps build` installs git first.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -s -w -X main.version=$(VERSION)
VMBIN ?= $(CURDIR)/.vmbin
# The guests' architectures; their binaries are cross-built, static.
VMARCHS := amd64 arm64
# The Dockerfile's platform (docker build --platform sets TARGETOS and
# TARGETARCH; empty without BuildKit): this machine's by default.
IMAGE_OS := $(or $(TARGETOS),linux)
IMAGE_ARCH := $(or $(TARGETARCH),$(shell $(GO) env GOARCH))
DIST ?= $(CURDIR)/dist

.PHONY: help deps build build-static report-only-check docker-build-path docker-build-paths release generate generate-check vmlinux test test-unit vmtest bench bench-quick lint test-all clean

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## Install what a fresh Debian machine lacks (apt packages, Go toolchain, Go modules)
	scripts/deps.sh

build: ## Build ./sendtrace (no clang needed: the BPF objects are committed)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o sendtrace ./cmd/sendtrace

build-static: ## Build a static ./sendtrace, as the Dockerfile does
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o sendtrace ./cmd/sendtrace

generate: ## Regenerate the BPF objects with the pinned clang ($(CLANG))
	@$(CLANG) --version | head -1 | grep -q 'version 19\.' || { echo "make generate needs clang 19 (apt-get install clang-19 llvm-19)"; exit 1; }
	@# bpf2go strips with llvm-strip, which llvm-19 installs only as llvm-strip-19 (and in its own bin directory).
	cd internal/loader && PATH="/usr/lib/llvm-19/bin:$$PATH" $(GO) generate ./...

generate-check: generate ## Fail when the committed BPF objects are stale
	@git diff --exit-code --stat -- internal/loader || { echo "generated BPF objects are stale: run 'make generate' and commit"; exit 1; }

vmlinux: ## Regenerate bpf/headers/vmlinux.h from this kernel's BTF
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/headers/vmlinux.h

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags corpusrecord ./test/corpus/

test-unit: ## Tests that need no privilege
	SENDTRACE_UNPRIVILEGED=1 $(GO) test -count=1 ./internal/events/... ./internal/render/... ./internal/record/... ./internal/report/... ./internal/htmlreport/... ./cmd/... ./test/corpus/...

# The scenarios run a second time with the socket layer alone (--no-syscall-layer),
# and a third with the legacy object of kernels before 5.11 (--disable-hook=sk_storage).
# FuzzReportText then fuzzes for 20s: no control character from a recording reaches the terminal.
test: ## Every Go test; as root the BPF and network-namespace scenario tests run too
	$(GO) test -count=1 -timeout 25m ./...
	SENDTRACE_ARGS=--no-syscall-layer $(GO) test -count=1 -timeout 10m ./test/scenario
	SENDTRACE_ARGS=--disable-hook=sk_storage $(GO) test -count=1 -timeout 10m ./test/scenario
	$(GO) test -run '^$$' -fuzz '^FuzzReportText$$' -fuzztime 20s -fuzzminimizetime 20x ./internal/report

vmtest: ## Run the hook-plan checks and scenarios in the pinned Debian kernels (5.10, 6.1, 6.12, 7.2: vmtest/kernels.pin), amd64 and arm64, under qemu
	rm -rf $(VMBIN)
	$(foreach a,$(VMARCHS),\
	GOARCH=$(a) CGO_ENABLED=0 $(GO) build -trimpath -o $(VMBIN)/$(a)/sendtrace ./cmd/sendtrace && \
	GOARCH=$(a) CGO_ENABLED=0 $(GO) build -trimpath -o $(VMBIN)/$(a)/actor ./internal/netlab/actor && \
	GOARCH=$(a) CGO_ENABLED=0 $(GO) build -trimpath -o $(VMBIN)/$(a)/guestcheck ./vmtest/guestcheck && \
	GOARCH=$(a) CGO_ENABLED=0 $(GO) test -c -o $(VMBIN)/$(a)/scenario.test ./test/scenario && ) true
	vmtest/run.sh --kernel $(or $(VMTEST_KERNELS),all) $(foreach a,$(VMARCHS),--bin-dir $(a)=$(VMBIN)/$(a)) --add $(CURDIR)/test/hooks.expect:/hooks.expect --plans $(VMBIN)/plans --commands vmtest/matrix.txt --timeout 1500 --jobs 2 $(VMTEST_FLAGS)

# The corpus: faults built live in network namespaces (test/corpus), each
# recorded with sendtrace record. make test replays the committed
# recordings (TestCorpusReplay); these two record them again, as root.
CORPUS_TMP ?= $(CURDIR)/.corpus
.PHONY: diagnose-corpus diagnose-eval
diagnose-corpus: ## Record the fault corpus live (root, some 15 min) and rewrite its recordings and labels in test/corpus/testdata
	SENDTRACE_CORPUS_OUT=$(CURDIR)/test/corpus/testdata $(GO) test -tags corpusrecord -count=1 -timeout 90m -run '^TestRecordCorpus$$' ./test/corpus

# A case the lab fails to build is reported by the evaluation as not
# recorded, so a failed recording does not stop it.
diagnose-eval: ## Record the fault corpus live on this kernel (root), a third of it twice; print the confusion matrix and targets, write docs/diagnosis.md
	rm -rf $(CORPUS_TMP)
	SENDTRACE_CORPUS_OUT=$(CORPUS_TMP)/first SENDTRACE_CORPUS_AGAIN=$(CORPUS_TMP)/again $(GO) test -tags corpusrecord -count=1 -timeout 120m -run '^TestRecordCorpus$$' ./test/corpus || echo "diagnose-eval: some cases were not recorded (above); they are reported as such"
	$(GO) run ./test/corpus/eval -dir $(CORPUS_TMP)/first -again $(CORPUS_TMP)/again -doc docs/diagnosis.md

.PHONY: vmtest-latest
vmtest-latest: ## The vmtest matrix in the newest kernel Debian packages, experimental's release candidates included (not in test-all)
	$(MAKE) vmtest VMTEST_KERNELS=latest,arm64-latest VMTEST_FLAGS='--apt-update $(VMTEST_FLAGS)'

bench: ## Full benchmark run; writes docs/benchmarks.md
	$(GO) run ./bench

bench-quick: ## A short benchmark run that only proves the harness and benchmarks work
	$(GO) run ./bench -quick -out /dev/null
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./internal/...

report-only-check: ## The macOS build reads recordings and links no BPF code
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/sendtrace
	@if GOOS=darwin GOARCH=arm64 $(GO) list -deps ./cmd/sendtrace | grep -q 'github.com/cilium/ebpf'; then echo "the darwin build links github.com/cilium/ebpf"; exit 1; fi

# A binary for another architecture cannot run here; its build info must
# name the architecture asked for.
docker-build-path: ## The Dockerfile's build stage for TARGETARCH (default: this machine's), without a Docker engine
	CGO_ENABLED=0 GOOS=$(IMAGE_OS) GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o sendtrace ./cmd/sendtrace
	@if [ "$(IMAGE_OS)/$(IMAGE_ARCH)" = "$$($(GO) env GOHOSTOS)/$$($(GO) env GOHOSTARCH)" ]; then ./sendtrace --version; \
	else $(GO) version -m sendtrace | grep -qx "[[:space:]]*build[[:space:]]*GOARCH=$(IMAGE_ARCH)" && echo "sendtrace: $(IMAGE_OS)/$(IMAGE_ARCH) build"; fi

# This machine's architecture last, so ./sendtrace runs here afterwards.
docker-build-paths: ## The Dockerfile's build stage for both platforms (linux/arm64, linux/amd64)
	$(MAKE) --no-print-directory docker-build-path TARGETARCH=$(filter-out $(shell $(GO) env GOHOSTARCH),arm64 amd64)
	$(MAKE) --no-print-directory docker-build-path TARGETARCH=$(shell $(GO) env GOHOSTARCH)

# darwin/arm64 is report-only: report, diff and reading recordings
# (tracing needs Linux).
release: ## Static binaries for linux/amd64, linux/arm64 and report-only darwin/arm64, with SHA256SUMS, in dist/
	rm -rf $(DIST) && mkdir -p $(DIST)
	$(foreach p,linux/amd64 linux/arm64 darwin/arm64,\
	CGO_ENABLED=0 GOOS=$(word 1,$(subst /, ,$(p))) GOARCH=$(word 2,$(subst /, ,$(p))) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/sendtrace-$(subst /,-,$(p)) ./cmd/sendtrace && ) true
	cd $(DIST) && sha256sum sendtrace-* > SHA256SUMS && cat SHA256SUMS

test-all: lint generate-check report-only-check docker-build-paths test vmtest bench-quick ## Everything CI runs

clean: ## Remove build outputs
	rm -rf sendtrace $(VMBIN) $(DIST) $(CORPUS_TMP)
