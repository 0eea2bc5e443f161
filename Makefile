# Mycelium Mesh — build, test and run.
#
#   make run     build, pack the sample workload and start a mesh that serves it
#   make test    vet, format check and the whole test suite under the race detector
#   make bench   every benchmark scenario, summarised in bench/results.txt
#   make fuzz    long fuzzing runs (FUZZTIME per target)
#   make soak    rollouts, workload and plugin kills under load for SOAKTIME
#   make proto   regenerate protobuf Go code with pinned generators

export PATH := /usr/local/go/bin:$(PATH)
GO       ?= go
BIN      := bin
FUZZTIME ?= 60s
SOAKTIME ?= 10m
GOFLAGS_TEST ?= -race -count=1 -timeout 20m

.PHONY: all build test vet fmtcheck fuzz soak bench run clean

all: build

# -buildvcs=auto stamps the commit into `mesh version` from a git checkout,
# whatever GOFLAGS the machine's go env sets. The sample workload is built
# without cgo: a static binary maps no libc and has no relocated pages, so
# each instance keeps less memory of its own.
build:
	$(GO) build -buildvcs=auto -o $(BIN)/mesh ./cmd/mesh
	CGO_ENABLED=0 $(GO) build -o $(BIN)/hello ./workloads/hello

# The sdk is a module of its own (sdk/go.mod): ./... of the engine does
# not reach it, so vet and test visit it too.
vet:
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...

fmtcheck:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

test: vet fmtcheck
	MESH_VERSITYGW="$${MESH_VERSITYGW:-$$(scripts/install-versitygw.sh)}" \
	MESH_ETCD_DIR="$${MESH_ETCD_DIR:-$$(scripts/install-etcd.sh)}" \
	$(GO) test $(GOFLAGS_TEST) ./...
	cd sdk && $(GO) test $(GOFLAGS_TEST) ./...

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

soak:
	MESH_SOAK_DURATION=$(SOAKTIME) $(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./core/mesh

bench: build
	scripts/bench.sh

run: build
	scripts/quickstart.sh

clean:
	rm -rf $(BIN) .mesh

-include mk/*.mk
