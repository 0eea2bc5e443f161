#!/usr/bin/env bash
# Builds the etcd server and etcdctl that the clustered fabric's tests run
# against, from the tools module tools/etcd (its go.mod pins the version),
# and prints the directory holding both binaries.
#
# The binaries are cached under ~/.cache/mesh-tools/etcd-<version>/ and
# reused when `go version -m` says each was built from etcd at that version.
# The tools module is its own module: the server's dependencies never enter
# this project's go.mod.
#
#   MESH_TOOLS_CACHE  cache root (default ~/.cache/mesh-tools)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/tools/etcd"
version="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$tools/go.mod")"
[ -n "$version" ] || { echo "install-etcd: no etcd server version in $tools/go.mod" >&2; exit 1; }
cache="${MESH_TOOLS_CACHE:-${HOME:-/root}/.cache/mesh-tools}"
dir="$cache/etcd-$version"
export PATH="/usr/local/go/bin:$PATH"

# cached NAME MODULE: the binary exists and was built with MODULE at version.
cached() {
	[ -x "$dir/$1" ] || return 1
	go version -m "$dir/$1" 2>/dev/null | awk -v m="$2" -v v="$version" \
		'$1 == "dep" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

all_cached() {
	cached etcd go.etcd.io/etcd/server/v3 && cached etcdctl go.etcd.io/etcd/etcdctl/v3
}

if ! all_cached; then
	echo "install-etcd: building etcd and etcdctl $version (about a minute)" >&2
	mkdir -p "$dir"
	tmp="$(mktemp -d "$dir/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tools" && CGO_ENABLED=0 GOWORK=off \
		go build -mod=readonly -trimpath -ldflags='-s -w' -o "$tmp/" ./etcd ./etcdctl) >&2
	mv "$tmp/etcd" "$tmp/etcdctl" "$dir/"
	all_cached || { echo "install-etcd: $dir does not hold etcd $version" >&2; exit 1; }
fi
echo "$dir"
