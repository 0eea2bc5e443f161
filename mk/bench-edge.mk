# Edge load scenario (bench/edge): the workload directly, a tuned
# httputil.ReverseProxy baseline, the edge with its out-of-process
# round-robin and least-loaded plugins, and Caddy and nginx, in one run.
#
#   make bench-edge                      run it, table in $(EDGE_OUT)
#   make bench-edge EDGE_BENCH_FLAGS='-duration 5s -rounds 5'
#   make bench-edge EDGE_INSTALL_PROXIES=no   never install caddy/nginx
#
# Caddy and nginx come from Debian's packages: when one is missing and make
# runs as root with apt-get available, it is installed first; otherwise its
# row says it was skipped.

EDGE_OUT             ?= bench/edge/results.txt
EDGE_BENCH_FLAGS     ?= -duration 3s -rounds 3 -concurrency 16
EDGE_INSTALL_PROXIES ?= yes
EDGE_BIN             ?= $(or $(BIN),bin)
EDGE_GO              ?= $(or $(GO),go)

.PHONY: bench-edge bench-edge-proxies

bench-edge-proxies:
	@need=""; \
	command -v caddy >/dev/null 2>&1 || need="$$need caddy"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$$need nginx"; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$(EDGE_INSTALL_PROXIES)" != yes ]; then echo "bench-edge: missing:$$need; those rows are skipped"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "bench-edge: missing:$$need (installing needs root and apt-get); those rows are skipped"; exit 0; fi; \
	echo "bench-edge: installing$$need from Debian packages"; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need >/dev/null; } \
		|| echo "bench-edge: installing$$need failed; those rows are skipped"

bench-edge: bench-edge-proxies
	$(EDGE_GO) build -o $(EDGE_BIN)/edgebench ./bench/edge
	$(EDGE_GO) build -o $(EDGE_BIN)/hello ./workloads/hello
	@mesh=""; \
	if $(EDGE_GO) build -o $(EDGE_BIN)/mesh ./cmd/mesh 2>/dev/null; then mesh="-mesh $(EDGE_BIN)/mesh"; fi; \
	echo "$(EDGE_BIN)/edgebench $$mesh -hello $(EDGE_BIN)/hello $(EDGE_BENCH_FLAGS) -out $(EDGE_OUT)"; \
	$(EDGE_BIN)/edgebench $$mesh -hello $(EDGE_BIN)/hello $(EDGE_BENCH_FLAGS) -out $(EDGE_OUT)
