#!/usr/bin/env bash
# Regenerates the wire fixtures from their text sources with the reference
# C++ tool (Debian package capnproto): fixtures/NAME.txt becomes
# fixtures/NAME.bin, one packed SporeConfig. Sources named future-* are
# encoded with future.capnp, a later revision of the schema. stream.bin is
# three messages one after another; truncated.bin is stream.bin cut inside
# its third message.
set -euo pipefail
cd "$(dirname "$0")"
schema=../../../proto/sporev1/spore.capnp
for src in fixtures/*.txt; do
	case "$src" in *.decoded.txt) continue ;; esac
	name="${src%.txt}"
	s="$schema"
	case "$(basename "$name")" in future-*) s=future.capnp ;; esac
	capnp encode --packed "$s" SporeConfig <"$src" >"$name.bin"
done
cat fixtures/full.bin fixtures/minimal.bin fixtures/zero-hosting.bin >fixtures/stream.bin
size=$(stat -c %s fixtures/stream.bin)
head -c $((size - 3)) fixtures/stream.bin >fixtures/truncated.bin
# What Encode writes (pinned by TestEncodeGolden), read back by the C++ tool.
capnp decode --packed "$schema" SporeConfig <fixtures/go-encoded.bin >fixtures/go-encoded.decoded.txt
