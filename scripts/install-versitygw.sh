#!/usr/bin/env bash
# Builds the versitygw S3 server that the s3-static hosting tests run against,
# at a pinned version, from the Go module proxy, and prints the binary's path.
#
# The binary is cached under ~/.cache/mesh-tools/versitygw-<version>/ and
# reused when `go version -m` says it is that module at that version. It is
# never part of this module's go.mod: it is a test tool, built on its own.
#
#   MESH_VERSITYGW_VERSION  version to build (default below)
#   MESH_TOOLS_CACHE        cache root (default ~/.cache/mesh-tools)
set -euo pipefail

version="${MESH_VERSITYGW_VERSION:-v1.8.0}"
module="github.com/versity/versitygw"
cache="${MESH_TOOLS_CACHE:-${HOME:-/root}/.cache/mesh-tools}"
dir="$cache/versitygw-$version"
bin="$dir/versitygw"
export PATH="/usr/local/go/bin:$PATH"

cached() {
	[ -x "$bin" ] || return 1
	go version -m "$bin" 2>/dev/null | awk -v m="$module" -v v="$version" \
		'$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

if ! cached; then
	echo "install-versitygw: building $module $version (a couple of minutes)" >&2
	mkdir -p "$dir"
	tmp="$(mktemp -d "$dir/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	# Outside any module, so this project's go.mod is never consulted or changed.
	(cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" CGO_ENABLED=0 \
		go install -trimpath -ldflags='-s -w' "$module/cmd/versitygw@$version") >&2
	mv "$tmp/versitygw" "$bin"
	cached || { echo "install-versitygw: $bin is not $module $version" >&2; exit 1; }
fi
echo "$bin"
