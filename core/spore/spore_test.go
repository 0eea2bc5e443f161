package spore

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The test vector below was computed independently of this package (with
// Python's json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False) and the pyca/cryptography ed25519 signer) and pins the
// canonical form and signature scheme described in the package doc.
const (
	vectorBinary    = "#!/bin/sh\necho hello\n"
	vectorPublicKey = "ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
	vectorBinarySHA = "bfdeaeb08cffb6a36438bcd12dda25417e3cdd36f1e7e482a2849d539225288b"
	vectorCanonical = `{"identity":{"kind":"Spore","name":"hello","version":"1.2.3"},` +
		`"integrity":{"binary_sha256":"bfdeaeb08cffb6a36438bcd12dda25417e3cdd36f1e7e482a2849d539225288b",` +
		`"created_at":"2026-01-02T03:04:05Z","public_key":"ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","signature":""},` +
		`"resources":{"nutrients":{"cpu_milli":250,"memory_mb":64}},` +
		`"runtime":{"args":["-greeting","hé \"q\"\\\t\u0001"],"command":"./binary","env":{"A_B":"x<y>&z","MODE":"prod"}},` +
		`"security":{"lsm_profile":"default","read_only_fs":true},"slo":{"p99_budget_ms":50}}`
	vectorDigestHex    = "acdc746d613fe8f0b42398fc6e05579640d2dab2c0098eece64ea0596f9ea234"
	vectorSignatureHex = "ac3a529f4c8ee93def6ebcc054d26403b9baad863c8522a225b13fac32201bde" +
		"b768513da9aea932fb31c2e2a4e9f43e067e157c6dc35c18fdc3c880a00ab107"
)

func vectorKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func vectorManifest() Manifest {
	return Manifest{
		Identity: Identity{Kind: "Spore", Name: "hello", Version: "1.2.3"},
		Runtime: Runtime{
			Command: "./binary",
			Args:    []string{"-greeting", "hé \"q\"\\\t\x01"},
			Env:     map[string]string{"MODE": "prod", "A_B": "x<y>&z"},
		},
		Resources: Resources{Nutrients: Nutrients{CPUMilli: 250, MemoryMB: 64}},
		SLO:       SLO{P99BudgetMS: 50},
		Security:  Security{LSMProfile: "default", ReadOnlyFS: true},
		Integrity: Integrity{
			BinarySHA256: vectorBinarySHA,
			PublicKey:    vectorPublicKey,
			CreatedAt:    "2026-01-02T03:04:05Z",
			Signature:    "ignored: the canonical form always has an empty signature",
		},
	}
}

func TestSignatureVector(t *testing.T) {
	key := vectorKey()
	if got := FormatPublicKey(pubOf(key)); got != vectorPublicKey {
		t.Fatalf("public key = %s, want %s", got, vectorPublicKey)
	}
	c, err := Canonical(vectorManifest())
	if err != nil {
		t.Fatal(err)
	}
	if string(c) != vectorCanonical {
		t.Fatalf("canonical form differs:\n got %s\nwant %s", c, vectorCanonical)
	}
	d, err := signedDigest(vectorManifest())
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(d) != vectorDigestHex {
		t.Fatalf("signed digest = %x, want %s", d, vectorDigestHex)
	}

	// Pack with the same manifest, binary and time must produce exactly the
	// vector's signature, and the packed spore must verify.
	dir := t.TempDir()
	bin := writeFile(t, dir, "bin", []byte(vectorBinary))
	in := vectorManifest()
	in.Integrity = Integrity{}
	var buf bytes.Buffer
	m, err := pack(&buf, bin, in, key, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Integrity.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(sig) != vectorSignatureHex {
		t.Fatalf("signature = %x, want %s", sig, vectorSignatureHex)
	}
	if m.Integrity.BinarySHA256 != vectorBinarySHA {
		t.Fatalf("binary_sha256 = %s, want %s", m.Integrity.BinarySHA256, vectorBinarySHA)
	}
	p := writeFile(t, dir, "v.spore", buf.Bytes())
	if _, err := Verify(p, []ed25519.PublicKey{pubOf(key)}); err != nil {
		t.Fatal(err)
	}
}

func TestCanonicalSortsEnvByUTF16(t *testing.T) {
	m := vectorManifest()
	// U+FF61 sorts before U+1F600 in code points but after it in UTF-16
	// (the emoji starts with the surrogate 0xD83D).
	m.Runtime.Env = map[string]string{"\uff61": "a", "\U0001F600": "b", "Z": "c"}
	c, err := Canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `"env":{"Z":"c","` + "\U0001F600" + `":"b","` + "\uff61" + `":"a"}`
	if !strings.Contains(string(c), want) {
		t.Fatalf("canonical env not in UTF-16 order:\n%s\nwant substring %s", c, want)
	}
}

func TestPackVerifyExtract(t *testing.T) {
	dir := t.TempDir()
	content := []byte("#!/bin/sh\necho packed\n")
	bin := writeFile(t, dir, "app", content)
	key := seedKey(1)
	out := filepath.Join(dir, "app.spore")
	in := baseManifest()
	in.Runtime.Env = nil
	in.Runtime.Args = nil
	packed, err := PackFile(out, bin, in, key)
	if err != nil {
		t.Fatal(err)
	}
	if packed.Runtime.Command != Command || packed.Identity.Kind != Kind {
		t.Fatalf("pack did not fill defaults: %+v", packed)
	}
	if packed.Integrity.BinarySHA256 != sha256Hex(content) {
		t.Fatalf("binary_sha256 = %s", packed.Integrity.BinarySHA256)
	}
	if packed.Integrity.PublicKey != FormatPublicKey(pubOf(key)) {
		t.Fatalf("public_key = %s", packed.Integrity.PublicKey)
	}
	ts, err := time.Parse(time.RFC3339, packed.Integrity.CreatedAt)
	if err != nil || ts.Location() != time.UTC || time.Since(ts) > time.Minute {
		t.Fatalf("created_at = %q (%v)", packed.Integrity.CreatedAt, err)
	}
	if names := dirEntries(t, dir); len(names) != 2 {
		t.Fatalf("PackFile left extra files: %v", names)
	}

	trusted := []ed25519.PublicKey{pubOf(seedKey(9)), pubOf(key)}
	m, err := Verify(out, trusted)
	if err != nil {
		t.Fatal(err)
	}
	if m.Identity != packed.Identity || m.Integrity != packed.Integrity {
		t.Fatalf("verified manifest %+v differs from packed %+v", m, packed)
	}

	target := filepath.Join(dir, "run", "hello-1")
	for i := 0; i < 2; i++ { // extracting again over a previous extraction works
		if _, err := Extract(out, trusted, target); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(filepath.Join(target, BinaryEntry))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("extracted binary = %q, %v", got, err)
	}
	st, _ := os.Stat(filepath.Join(target, BinaryEntry))
	if st.Mode().Perm() != 0o755 {
		t.Fatalf("binary mode %v, want 0755", st.Mode().Perm())
	}
	mj, err := os.ReadFile(filepath.Join(target, ManifestEntry))
	if err != nil {
		t.Fatal(err)
	}
	dm, err := DecodeManifest(mj)
	if err != nil || dm.Integrity != packed.Integrity {
		t.Fatalf("extracted manifest: %+v, %v", dm, err)
	}
	if names := dirEntries(t, target); strings.Join(names, ",") != "binary,manifest.json" {
		t.Fatalf("target holds %v", names)
	}

	rm, err := ReadManifest(out)
	if err != nil || rm.Identity.Name != "hello" {
		t.Fatalf("ReadManifest: %+v, %v", rm, err)
	}
}

func TestPackRefuses(t *testing.T) {
	dir := t.TempDir()
	bin := writeFile(t, dir, "app", []byte("x"))
	key := seedKey(1)
	cases := []struct {
		name string
		mut  func(*Manifest)
		bin  string
		key  ed25519.PrivateKey
		want error
	}{
		{"no name", func(m *Manifest) { m.Identity.Name = "" }, bin, key, ErrBadManifest},
		{"no version", func(m *Manifest) { m.Identity.Version = "" }, bin, key, ErrBadManifest},
		{"bad name", func(m *Manifest) { m.Identity.Name = "../etc" }, bin, key, ErrBadManifest},
		{"wrong kind", func(m *Manifest) { m.Identity.Kind = "Mushroom" }, bin, key, ErrWrongKind},
		{"other command", func(m *Manifest) { m.Runtime.Command = "/bin/sh" }, bin, key, ErrBadManifest},
		{"negative memory", func(m *Manifest) { m.Resources.Nutrients.MemoryMB = -1 }, bin, key, ErrBadManifest},
		{"env key with =", func(m *Manifest) { m.Runtime.Env = map[string]string{"A=B": "1"} }, bin, key, ErrBadManifest},
		{"short key", nil, bin, key[:10], ErrBadKey},
		{"binary is a directory", nil, dir, key, nil},
		{"binary missing", nil, filepath.Join(dir, "nope"), key, fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := baseManifest()
			if tc.mut != nil {
				tc.mut(&m)
			}
			var buf bytes.Buffer
			_, err := Pack(&buf, tc.bin, m, tc.key)
			if err == nil {
				t.Fatal("Pack succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			out := filepath.Join(dir, tc.name+".spore")
			if _, err := PackFile(out, tc.bin, m, tc.key); err == nil {
				t.Fatal("PackFile succeeded")
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("PackFile left %s behind", out)
			}
		})
	}
	if names := dirEntries(t, dir); len(names) != 1 {
		t.Fatalf("failed packs left files: %v", names)
	}
}

func TestDecodeUnsigned(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"minimal", `{"identity":{"name":"a","version":"1"}}`, nil},
		{"full", `{"identity":{"kind":"Spore","name":"a","version":"1"},"runtime":{"args":["x"],"env":{"K":"V"}},
			"resources":{"nutrients":{"cpu_milli":1,"memory_mb":2}},"slo":{"p99_budget_ms":3},"security":{"lsm_profile":"p","read_only_fs":true}}`, nil},
		{"integrity", `{"identity":{"name":"a","version":"1"},"integrity":{"signature":"x"}}`, ErrBadManifest},
		{"unknown field", `{"identity":{"name":"a","version":"1"},"extra":1}`, ErrBadManifest},
		{"no identity", `{"runtime":{}}`, ErrBadManifest},
		{"no version", `{"identity":{"name":"a"}}`, ErrBadManifest},
		{"wrong kind", `{"identity":{"kind":"Mold","name":"a","version":"1"}}`, ErrWrongKind},
		{"fractional number", `{"identity":{"name":"a","version":"1"},"slo":{"p99_budget_ms":1.5}}`, ErrBadManifest},
		{"two objects", `{"identity":{"name":"a","version":"1"}} {}`, ErrBadManifest},
		{"not json", `identity: a`, ErrBadManifest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeUnsigned([]byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if m.Identity.Kind != Kind || m.Runtime.Command != Command || m.Runtime.Env == nil || m.Runtime.Args == nil {
					t.Fatalf("defaults not filled: %+v", m)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
