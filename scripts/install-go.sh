#!/usr/bin/env bash
# Makes sure a Go toolchain at least as new as go.mod's `go` line is on PATH,
# and prints the directory to add to PATH (nothing when the one found fits).
#
# Order: the Go already installed (/usr/local/go or PATH); else Debian's
# golang-go through apt-get. When that Go is older than go.mod wants, the
# matching toolchain is fetched from the Go module proxy as the module
# golang.org/toolchain (the same source `GOTOOLCHAIN` uses) into
# ~/.cache/mesh-go/go<version>.
set -euo pipefail
cd "$(dirname "$0")/.."

want="$(awk '/^go /{print $2; exit}' go.mod)"
export PATH="/usr/local/go/bin:$PATH"

if ! command -v go >/dev/null 2>&1; then
	echo "install-go: no Go found, installing Debian's golang-go" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >&2
fi

have="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
older() { # older A B: A < B as versions
	[ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}
if ! older "$have" "$want"; then
	exit 0
fi

dest="${HOME:-/root}/.cache/mesh-go/go$want"
if [ ! -x "$dest/bin/go" ]; then
	arch="$(go env GOARCH)"
	mod="golang.org/toolchain@v0.0.1-go$want.linux-$arch"
	echo "install-go: Go $have is older than go.mod's $want; fetching $mod" >&2
	tmp="$(mktemp -d)"
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	dir="$(cd "$tmp" && GOPATH="$tmp/gopath" GO111MODULE=on GOFLAGS=-modcacherw \
		go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	[ -n "$dir" ] || { echo "install-go: could not download $mod" >&2; exit 1; }
	mkdir -p "$(dirname "$dest")"
	rm -rf "$dest.partial"
	cp -r "$dir" "$dest.partial"
	chmod -R u+w "$dest.partial"
	chmod +x "$dest.partial"/bin/* "$dest.partial"/pkg/tool/*/*
	mv "$dest.partial" "$dest"
fi
echo "$dest/bin"
