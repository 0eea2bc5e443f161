// Package spore packs, verifies and extracts spores: signed zip archives that
// carry one workload binary and the manifest that describes it.
//
// # Archive layout
//
// A spore is a zip archive holding exactly two regular-file entries,
// "manifest.json" and "binary", in any order. Verify refuses any other shape:
// directories, symbolic links or other special entries, absolute names,
// names with ".." elements or backslashes, duplicate names, extra or missing
// entries. Entries are stored (method 0) or deflated (method 8); encrypted or
// other methods are refused. The manifest may not exceed MaxManifestSize
// (1 MiB) and the binary may not exceed MaxBinarySize; opening the archive
// reads at most 1 MiB of central directory, however many entries it claims.
// Every entry is decompressed through a counter: an entry that inflates past
// the size its header declares (a zip bomb) is stopped at the first byte
// beyond it, and one that ends early is refused too, as is a CRC-32 mismatch.
//
// Pack stores the binary uncompressed, so packing and verifying run at the
// speed of SHA-256 and memory stays flat whatever the size of the binary.
//
// # Manifest
//
// manifest.json is a JSON object with exactly these members (unknown members
// are refused, all six sections are required):
//
//	{
//	  "identity":  {"kind": "Spore", "name": "hello", "version": "1.0.0"},
//	  "runtime":   {"command": "./binary", "args": [], "env": {}},
//	  "resources": {"nutrients": {"cpu_milli": 250, "memory_mb": 64}},
//	  "slo":       {"p99_budget_ms": 50},
//	  "security":  {"lsm_profile": "", "read_only_fs": false},
//	  "integrity": {"binary_sha256": "<64 lowercase hex>",
//	                "signature": "<base64 of 64 bytes>",
//	                "public_key": "ed25519:<base64 of 32 bytes>",
//	                "created_at": "2026-01-02T03:04:05Z"}
//	}
//
// identity.kind is "Spore"; identity.name is 1–128 characters from
// [A-Za-z0-9._-] starting with a letter or digit; identity.version is 1–128
// characters from [A-Za-z0-9._+~-]. runtime.command is always "./binary" (Pack
// fills it in when empty): the binary runs from the extracted directory with
// runtime.args and runtime.env. Numbers are integers in [0, 2^53-1]. Base64 is
// standard base64 with padding (RFC 4648 section 4).
//
// # Signature
//
// The signature covers the canonical form of the manifest together with the
// binary digest:
//
//	C   = canonical JSON of the manifest with integrity.signature set to ""
//	D   = integrity.binary_sha256 as its 64 lowercase hex ASCII bytes
//	sig = ed25519.Sign(privateKey, SHA-256(C || D))
//
// and integrity.signature holds base64(sig). The canonical form C is the
// manifest as RFC 8785 (JSON Canonicalization Scheme) serializes it:
//
//   - every member listed above is present, none other; a missing args array
//     is written [] and a missing env object {};
//   - object members sorted by key (UTF-16 code units, as RFC 8785 says; all
//     fixed keys are ASCII, so this only matters for env keys);
//   - no whitespace outside strings;
//   - strings in double quotes, escaping '"' as \", '\' as \\, U+0008 as \b,
//     U+0009 as \t, U+000A as \n, U+000C as \f, U+000D as \r, any other
//     character below U+0020 as \u00xx with lowercase hex, and every other
//     character written as its raw UTF-8 bytes;
//   - integers in plain decimal, booleans as true or false.
//
// For example, the canonical form of a manifest starts
//
//	{"identity":{"kind":"Spore","name":"hello","version":"1.0.0"},"integrity":{"binary_sha256":"…","created_at":"…","public_key":"ed25519:…","signature":""},"resources":{…
//
// Canonical returns C for a manifest; the package tests pin a full test
// vector (seed, manifest, canonical bytes and signature).
//
// # Trust
//
// A spore carries its signer's public key, but that key proves nothing by
// itself: Verify and Extract pass only when the signer's key is in the
// caller's trusted set, and refuse everything when that set is empty. Every
// check (layout, sizes, manifest, trust, signature, binary digest) completes
// before Extract writes a byte into the target directory; each refusal wraps
// one of the exported Err* sentinels, so callers can tell them apart with
// errors.Is.
//
// # Keys
//
// Public keys are written "ed25519:" followed by the standard base64 of the
// 32-byte key, e.g. in mesh.hcl or on the command line. GenerateKeyPair
// writes two text files; lines starting with '#' and blank lines are
// comments:
//
//	PREFIX.pub (mode 0644)   ed25519:<base64 of the 32-byte public key>
//	PREFIX.key (mode 0600)   ed25519-private:<base64 of the 32-byte seed>
//
// The private key file holds the RFC 8032 seed; ReadPrivateKey refuses a key
// file that group or others may read. A trusted-key file given to
// LoadTrustedKeys may hold several public keys, one per line.
package spore
