#!/usr/bin/env bash
# Runs every fuzz target of the project for FUZZTIME each (default 60s).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-60s}"
status=0
for pkg in $(go list ./...); do
	dir="$(go list -f '{{.Dir}}' "$pkg")"
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "==> $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" || status=1
	done
done
exit $status
