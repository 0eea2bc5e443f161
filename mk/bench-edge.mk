# Edge load scenario (bench/edge): the workload directly, a tuned
# httputil.ReverseProxy baseline, the edge with its out-of-process
# round-robin and least-loaded plugins, Caddy, nginx and HAProxy, loaded by
# wrk in one run: a tiny answer and a 16 KiB one over keep-alive, and the
# tiny one with a new connection per request.
#
#   make bench-edge                      run it, table in $(EDGE_OUT)
#   make bench-edge EDGE_BENCH_FLAGS='-duration 5s -rounds 5'
#   make bench-edge EDGE_BENCH_FLAGS='-duration 2s -rounds 1 -scenarios tiny'
#   make bench-edge EDGE_INSTALL=no      never install packages
#
# wrk, Caddy, nginx and HAProxy come from Debian's packages: whichever is
# missing is installed first when make runs as root with apt-get available
# (after apt-get update). Without wrk the scenario cannot run; a missing
# proxy's row says it was skipped and why.

EDGE_OUT          ?= bench/edge/results.txt
EDGE_BENCH_FLAGS  ?= -duration 3s -rounds 5 -concurrency 16
EDGE_INSTALL      ?= $(or $(EDGE_INSTALL_PROXIES),yes)
EDGE_BIN          ?= $(or $(BIN),bin)
EDGE_GO           ?= $(or $(GO),go)

.PHONY: bench-edge bench-edge-tools

# Debian package and the binary it installs, as package:binary.
EDGE_TOOLS := wrk:wrk caddy:caddy nginx:nginx haproxy:haproxy

bench-edge-tools:
	@need=""; \
	for pb in $(EDGE_TOOLS); do \
		pkg="$${pb%%:*}"; bin="$${pb##*:}"; \
		command -v "$$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$$bin" ] || need="$$need $$pkg"; \
	done; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$(EDGE_INSTALL)" != yes ]; then echo "bench-edge: missing:$$need; not installing (EDGE_INSTALL=$(EDGE_INSTALL))"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "bench-edge: missing:$$need (installing needs root and apt-get)"; exit 0; fi; \
	echo "bench-edge: installing$$need from Debian packages"; \
	apt-get update -qq || echo "bench-edge: apt-get update failed; trying the install anyway"; \
	for pkg in $$need; do \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$$pkg" >/dev/null \
			|| echo "bench-edge: installing $$pkg failed"; \
	done

bench-edge: bench-edge-tools
	$(EDGE_GO) build -o $(EDGE_BIN)/edgebench ./bench/edge
	$(EDGE_GO) build -o $(EDGE_BIN)/hello ./workloads/hello
	@mesh=""; \
	if $(EDGE_GO) build -o $(EDGE_BIN)/mesh ./cmd/mesh 2>/dev/null; then mesh="-mesh $(EDGE_BIN)/mesh"; fi; \
	echo "$(EDGE_BIN)/edgebench $$mesh -hello $(EDGE_BIN)/hello $(EDGE_BENCH_FLAGS) -out $(EDGE_OUT)"; \
	$(EDGE_BIN)/edgebench $$mesh -hello $(EDGE_BIN)/hello $(EDGE_BENCH_FLAGS) -out $(EDGE_OUT)
