# Clustered fabric scenario (bench/cluster): plan-to-ready on the etcd
# fabric (roles apart: control and edge on one host, `mesh agent` on three)
# against the embedded one (`mesh run`) in the same run, failover after a
# host dies, and 1,000 apps with 50 store-level agents with etcd's write
# and watch load. Hosts are network namespaces as root, loopback
# addresses otherwise (the table says which). The etcd server comes from
# scripts/install-etcd.sh (built once, cached) unless MESH_ETCD_DIR names one.
#
#   make bench-cluster                    run it, table in $(CLUSTER_OUT)
#   make bench-cluster CLUSTER_BENCH_FLAGS='-rounds 3 -scenarios plan,failover'
#   make bench-cluster CLUSTER_BENCH_FLAGS='-hosts loopback -scale-apps 200'

CLUSTER_OUT         ?= bench/cluster/results.txt
CLUSTER_BENCH_FLAGS ?= -rounds 5
CLUSTER_BIN         ?= $(or $(BIN),bin)
CLUSTER_GO          ?= $(or $(GO),go)

.PHONY: bench-cluster

bench-cluster:
	$(CLUSTER_GO) build -o $(CLUSTER_BIN)/clusterbench ./bench/cluster
	$(CLUSTER_GO) build -o $(CLUSTER_BIN)/mesh ./cmd/mesh
	CGO_ENABLED=0 $(CLUSTER_GO) build -o $(CLUSTER_BIN)/hello ./workloads/hello
	@dir="$${MESH_ETCD_DIR:-$$(scripts/install-etcd.sh)}"; \
	echo "MESH_ETCD_DIR=$$dir $(CLUSTER_BIN)/clusterbench -mesh $(CLUSTER_BIN)/mesh -hello $(CLUSTER_BIN)/hello $(CLUSTER_BENCH_FLAGS) -out $(CLUSTER_OUT)"; \
	MESH_ETCD_DIR="$$dir" $(CLUSTER_BIN)/clusterbench -mesh $(CLUSTER_BIN)/mesh -hello $(CLUSTER_BIN)/hello $(CLUSTER_BENCH_FLAGS) -out $(CLUSTER_OUT)
