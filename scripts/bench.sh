#!/usr/bin/env bash
# Runs every benchmark scenario of the project and prints one summary table of
# medians and ratios, also written to bench/results.txt. The edge load
# scenario's own table (bench/edge/results.txt) and the cluster scenario's
# (bench/cluster/results.txt) are included whole; each says whether the
# machine was busy while it ran.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${BENCH_COUNT:-5}"
out=bench/results.txt
edge_out=bench/edge/results.txt
cluster_out=bench/cluster/results.txt
raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# The S3 server the s3-static sync benchmark runs against.
MESH_VERSITYGW="$(scripts/install-versitygw.sh)"
export MESH_VERSITYGW

pkgs=$(go list ./... | while read -r p; do
	d="$(go list -f '{{.Dir}}' "$p")"
	if grep -qs '^func Benchmark' "$d"/*_test.go; then echo "$p"; fi
done)
echo "==> go benchmarks (count=$count): $pkgs" >&2
go test -run '^$' -bench . -benchmem -count "$count" -timeout 60m $pkgs | tee "$raw/go.txt" >&2

edge_table=""
if [ -d bench/edge ]; then
	echo "==> edge load scenario" >&2
	rm -f "$edge_out"
	if make -s bench-edge EDGE_OUT="$edge_out" >&2; then
		edge_table="$edge_out"
	else
		echo "edge load scenario failed" >&2
	fi
fi

cluster_table=""
if [ -d bench/cluster ]; then
	echo "==> cluster scenario" >&2
	rm -f "$cluster_out"
	if make -s bench-cluster CLUSTER_OUT="$cluster_out" >&2; then
		cluster_table="$cluster_out"
	else
		echo "cluster scenario failed" >&2
	fi
fi

{
	echo "# Mycelium Mesh benchmark summary"
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
	echo "# load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# (the go benchmarks do not check for other load; the edge table below does, per measurement)"
	echo
	go run ./bench/summary < "$raw/go.txt"
	if [ -n "$edge_table" ] && [ -f "$edge_table" ]; then
		echo
		cat "$edge_table"
	fi
	if [ -n "$cluster_table" ] && [ -f "$cluster_table" ]; then
		echo
		cat "$cluster_table"
	fi
} | tee "$out"
echo "==> written to $out" >&2
