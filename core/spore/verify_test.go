package spore

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusalCase is a crafted spore that Verify and Extract must refuse.
type refusalCase struct {
	name    string
	build   func(t testing.TB) []byte
	trusted []ed25519.PublicKey // nil means the default trusted set
	want    error
}

var (
	trustedKey   = seedKey(1)
	untrustedKey = seedKey(2)
	goodBinary   = []byte("#!/bin/sh\nexec echo hello\n")
)

func goodManifest(t testing.TB) []byte {
	return signedManifestJSON(t, trustedKey, goodBinary, nil, nil)
}

func refusalCases() []refusalCase {
	std := func(m func(testing.TB) []byte, bin []byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: m(t), method: 8},
				{name: BinaryEntry, data: bin, mode: 0o755},
			})
		}
	}
	withManifest := func(before, after func(*Manifest)) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return signedManifestJSON(t, trustedKey, goodBinary, before, after) }
	}
	rawManifest := func(s string) func(testing.TB) []byte {
		return func(testing.TB) []byte { return []byte(s) }
	}
	tampered := append([]byte(nil), goodBinary...)
	tampered[len(tampered)-2] ^= 0x20
	zeros := make([]byte, 32<<20)

	return []refusalCase{
		{name: "modified binary", build: std(goodManifest, tampered), want: ErrBinaryDigest},
		{name: "modified manifest field", build: std(withManifest(nil, func(m *Manifest) { m.Identity.Version = "6.6.6" }), goodBinary), want: ErrBadSignature},
		{name: "modified env", build: std(withManifest(nil, func(m *Manifest) { m.Runtime.Env["LD_PRELOAD"] = "/tmp/x.so" }), goodBinary), want: ErrBadSignature},
		{name: "untrusted key signature", build: std(func(t testing.TB) []byte {
			return signedManifestJSON(t, untrustedKey, goodBinary, nil, nil)
		}, goodBinary), want: ErrUntrustedKey},
		{name: "trusted key claimed, signed by another", build: std(func(t testing.TB) []byte {
			return signedManifestJSON(t, untrustedKey, goodBinary, nil, func(m *Manifest) {
				m.Integrity.PublicKey = FormatPublicKey(pubOf(trustedKey))
			})
		}, goodBinary), want: ErrBadSignature},
		{name: "empty trusted set", build: std(goodManifest, goodBinary), trusted: []ed25519.PublicKey{}, want: ErrUntrustedKey},
		{name: "wrong binary_sha256", build: std(withManifest(func(m *Manifest) {
			m.Integrity.BinarySHA256 = sha256Hex([]byte("another binary"))
		}, nil), goodBinary), want: ErrBinaryDigest},
		{name: "dotdot entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: "../x", data: []byte("evil")},
			})
		}, want: ErrUnsafeEntry},
		{name: "nested dotdot entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: "a/../../binary", data: goodBinary},
				{name: ManifestEntry, data: goodManifest(t)},
			})
		}, want: ErrUnsafeEntry},
		{name: "absolute entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: "/etc/cron.d/x", data: []byte("evil")},
			})
		}, want: ErrUnsafeEntry},
		{name: "backslash entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: `..\x`, data: []byte("evil")},
			})
		}, want: ErrUnsafeEntry},
		{name: "symlink entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: []byte("/bin/sh"), mode: fs.ModeSymlink | 0o777},
			})
		}, want: ErrUnsafeEntry},
		{name: "directory entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: "lib/", mode: fs.ModeDir | 0o755},
			})
		}, want: ErrUnsafeEntry},
		{name: "extra entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: "README", data: []byte("hi")},
			})
		}, want: ErrExtraEntry},
		{name: "missing binary", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{{name: ManifestEntry, data: goodManifest(t)}})
		}, want: ErrMissingEntry},
		{name: "missing manifest", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{{name: BinaryEntry, data: goodBinary}})
		}, want: ErrMissingEntry},
		{name: "empty archive", build: func(t testing.TB) []byte { return buildZip(t, nil) }, want: ErrMissingEntry},
		{name: "duplicate entry", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary},
				{name: BinaryEntry, data: []byte("second")},
			})
		}, want: ErrDuplicateEntry},
		{name: "oversized manifest", build: std(func(t testing.TB) []byte {
			m := goodManifest(t)
			return append(m, bytes.Repeat([]byte(" "), MaxManifestSize)...)
		}, goodBinary), want: ErrManifestTooLarge},
		{name: "manifest bomb", build: func(t testing.TB) []byte {
			body := append(goodManifest(t), bytes.Repeat([]byte(" "), 4<<20)...)
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: deflate(t, body), method: 8, raw: true, crc: crcOf(body), usize: 1000},
				{name: BinaryEntry, data: goodBinary},
			})
		}, want: ErrManifestTooLarge},
		{name: "zip bomb", build: func(t testing.TB) []byte {
			// 32 MiB of zeros deflate to ~32 KiB; the header claims the
			// small binary's size, so inflating must stop right past it.
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: deflate(t, zeros), method: 8, raw: true, crc: crcOf(goodBinary), usize: uint64(len(goodBinary))},
			})
		}, want: ErrTooLarge},
		{name: "declared size beyond limit", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: deflate(t, zeros), method: 8, raw: true, crc: 0, usize: MaxBinarySize + 1},
			})
		}, want: ErrTooLarge},
		{name: "declared ratio beyond deflate", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: deflate(t, goodBinary), method: 8, raw: true, crc: 0, usize: 1 << 30},
			})
		}, want: ErrTooLarge},
		{name: "binary shorter than declared", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary, method: 0, raw: true, crc: crcOf(goodBinary), usize: uint64(len(goodBinary)) + 10},
			})
		}, want: ErrSizeMismatch},
		{name: "crc mismatch", build: func(t testing.TB) []byte {
			return buildZip(t, []zentry{
				{name: ManifestEntry, data: goodManifest(t)},
				{name: BinaryEntry, data: goodBinary, method: 0, raw: true, crc: crcOf(goodBinary) ^ 1, usize: uint64(len(goodBinary))},
			})
		}, want: ErrBadArchive},
		{name: "malformed JSON", build: std(rawManifest(`{"identity":{"kind":"Spore",`), goodBinary), want: ErrBadManifest},
		{name: "unknown manifest field", build: std(func(t testing.TB) []byte {
			m := goodManifest(t)
			return append([]byte(`{"hook":"rm -rf /",`), m[1:]...)
		}, goodBinary), want: ErrBadManifest},
		{name: "missing section", build: std(rawManifest(`{"identity":{"kind":"Spore","name":"a","version":"1"}}`), goodBinary), want: ErrBadManifest},
		{name: "missing signature", build: std(withManifest(nil, func(m *Manifest) { m.Integrity.Signature = "" }), goodBinary), want: ErrBadManifest},
		{name: "wrong kind", build: std(withManifest(func(m *Manifest) { m.Identity.Kind = "Mushroom" }, nil), goodBinary), want: ErrWrongKind},
		{name: "other command", build: std(withManifest(func(m *Manifest) { m.Runtime.Command = "/bin/sh" }, nil), goodBinary), want: ErrBadManifest},
		{name: "huge central directory", build: func(t testing.TB) []byte {
			entries := []zentry{{name: ManifestEntry, data: goodManifest(t)}, {name: BinaryEntry, data: goodBinary}}
			for i := 0; i < 30000; i++ {
				entries = append(entries, zentry{name: fmt.Sprintf("padding/entry-%08d", i), method: 0})
			}
			return buildZip(t, entries)
		}, want: ErrBadArchive},
		{name: "not a zip", build: func(testing.TB) []byte { return []byte("MZ this is not a zip archive") }, want: ErrBadArchive},
	}
}

func TestVerifyRefuses(t *testing.T) {
	for _, tc := range refusalCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeFile(t, dir, "crafted.spore", tc.build(t))
			trusted := tc.trusted
			if trusted == nil {
				trusted = []ed25519.PublicKey{pubOf(seedKey(7)), pubOf(trustedKey)}
			}
			_, err := Verify(p, trusted)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the spore", err)
			}
			target := filepath.Join(dir, "target")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err = Extract(p, trusted, target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Extract err = %v, want %v", err, tc.want)
			}
			if names := dirEntries(t, target); len(names) != 0 {
				t.Fatalf("Extract left %v in the target directory", names)
			}
			// Nothing escaped next to the target either.
			if names := dirEntries(t, dir); len(names) != 2 {
				t.Fatalf("files appeared beside the target: %v", names)
			}
		})
	}
}

// The refusal cases are built from a valid spore; make sure that baseline
// really verifies, so each case fails for the reason it names.
func TestRefusalBaselineVerifies(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "good.spore", buildZip(t, []zentry{
		{name: ManifestEntry, data: goodManifest(t), method: 8},
		{name: BinaryEntry, data: goodBinary, mode: 0o755},
	}))
	if _, err := Extract(p, []ed25519.PublicKey{pubOf(trustedKey)}, filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyMissingFile(t *testing.T) {
	_, err := Verify(filepath.Join(t.TempDir(), "none.spore"), []ed25519.PublicKey{pubOf(trustedKey)})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
