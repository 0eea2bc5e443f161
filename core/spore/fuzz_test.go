package spore

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

var sentinels = []error{
	ErrBadArchive, ErrUnsafeEntry, ErrExtraEntry, ErrMissingEntry, ErrDuplicateEntry,
	ErrManifestTooLarge, ErrTooLarge, ErrSizeMismatch, ErrBadManifest, ErrWrongKind,
	ErrBinaryDigest, ErrBadSignature, ErrUntrustedKey,
}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(goodManifest(f))
	f.Add([]byte(vectorCanonical))
	f.Add([]byte(`{"identity":{"kind":"Spore","name":"a","version":"1"}}`))
	f.Add([]byte(`{"identity":null,"runtime":{},"resources":{},"slo":{},"security":{},"integrity":{}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"identity":{"kind":"Spore"}} trailing`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) && !errors.Is(err, ErrWrongKind) && !errors.Is(err, ErrManifestTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		// A manifest that decodes has a canonical form, and re-encoding it
		// yields the same manifest (same canonical bytes).
		c1, err := Canonical(m)
		if err != nil {
			t.Fatalf("decoded manifest has no canonical form: %v", err)
		}
		pretty, err := encodePretty(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeManifest(pretty)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, pretty)
		}
		c2, _ := Canonical(m2)
		if string(c1) != string(c2) {
			t.Fatalf("canonical form not stable:\n%s\n%s", c1, c2)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(buildZip(f, []zentry{
		{name: ManifestEntry, data: goodManifest(f), method: 8},
		{name: BinaryEntry, data: goodBinary, mode: 0o755},
	}))
	for _, rc := range refusalCases() {
		if rc.name == "zip bomb" || rc.name == "declared size beyond limit" || rc.name == "oversized manifest" || rc.name == "manifest bomb" || rc.name == "huge central directory" {
			continue // large seeds slow every fuzz iteration down
		}
		f.Add(rc.build(f))
	}
	trusted := []ed25519.PublicKey{pubOf(trustedKey)}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f.spore")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "out")
		vm, verr := Verify(p, trusted)
		em, eerr := Extract(p, trusted, target)
		if (verr == nil) != (eerr == nil) {
			t.Fatalf("Verify err %v but Extract err %v", verr, eerr)
		}
		if eerr != nil {
			if !wrapsSentinel(eerr) {
				t.Fatalf("refusal wraps no sentinel: %v", eerr)
			}
			if _, err := os.Stat(target); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("refused spore created the target directory")
			}
			return
		}
		// Accepted: it must be signed by the trusted key and the extracted
		// binary must hash to what the manifest says.
		if vm.Integrity != em.Integrity || vm.Integrity.PublicKey != FormatPublicKey(trusted[0]) {
			t.Fatalf("accepted a spore signed by %s", vm.Integrity.PublicKey)
		}
		bin, err := os.ReadFile(filepath.Join(target, BinaryEntry))
		if err != nil {
			t.Fatal(err)
		}
		if sha256Hex(bin) != em.Integrity.BinarySHA256 {
			t.Fatal("extracted binary does not match the manifest digest")
		}
	})
}
