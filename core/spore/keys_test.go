package spore

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "signer")
	pubPath, privPath, err := GenerateKeyPair(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if pubPath != prefix+".pub" || privPath != prefix+".key" {
		t.Fatalf("paths %s %s", pubPath, privPath)
	}
	for p, want := range map[string]fs.FileMode{pubPath: 0o644, privPath: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	priv, err := ReadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadTrustedKeys([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Equal(priv.Public()) {
		t.Fatalf("public key file does not match the private key")
	}
	// The key pair signs and verifies.
	msg := []byte("m")
	if !ed25519.Verify(keys[0], msg, ed25519.Sign(priv, msg)) {
		t.Fatal("signature by generated key does not verify")
	}
	// Never overwrite: a second run fails and leaves both files intact.
	before, _ := os.ReadFile(privPath)
	if _, _, err := GenerateKeyPair(prefix); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateKeyPair err = %v, want ErrExist", err)
	}
	after, _ := os.ReadFile(privPath)
	if string(before) != string(after) {
		t.Fatal("private key was overwritten")
	}
	// Only the public half exists: still refused, no key file created.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other+".pub", []byte(FormatPublicKey(keys[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := GenerateKeyPair(other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want ErrExist", err)
	}
	if _, err := os.Stat(other + ".key"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("key file created although the pub file existed")
	}
	if names := dirEntries(t, dir); len(names) != 3 {
		t.Fatalf("temporary files left: %v", names)
	}
}

func TestReadPrivateKeyRefuses(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "k")
	_, privPath, err := GenerateKeyPair(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(privPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKey(privPath); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("err = %v, want ErrInsecureKeyFile", err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{
		"empty":      "# nothing\n",
		"public":     FormatPublicKey(pubOf(seedKey(1))) + "\n",
		"short seed": "ed25519-private:AAAA\n",
		"two keys":   "ed25519-private:" + strings.Repeat("A", 43) + "=\ned25519-private:" + strings.Repeat("A", 43) + "=\n",
		"bad base64": "ed25519-private:!!!!\n",
	} {
		if _, err := ReadPrivateKey(write(name, body)); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: err = %v, want ErrBadKey", name, err)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	good := FormatPublicKey(pubOf(seedKey(3)))
	cases := []struct {
		in string
		ok bool
	}{
		{good, true},
		{"  " + good + "\n", true},
		{strings.TrimPrefix(good, "ed25519:"), false},
		{"rsa:" + strings.TrimPrefix(good, "ed25519:"), false},
		{"ed25519:", false},
		{"ed25519:AAAA", false},
		{"ed25519:" + strings.TrimSuffix(strings.TrimPrefix(good, "ed25519:"), "="), false},
		{"ed25519:***", false},
	}
	for _, tc := range cases {
		k, err := ParsePublicKey(tc.in)
		if tc.ok {
			if err != nil || FormatPublicKey(k) != good {
				t.Errorf("ParsePublicKey(%q) = %v, %v", tc.in, k, err)
			}
		} else if !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%q) err = %v, want ErrBadKey", tc.in, err)
		}
	}
}

func TestLoadTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	a, b, c := FormatPublicKey(pubOf(seedKey(1))), FormatPublicKey(pubOf(seedKey(2))), FormatPublicKey(pubOf(seedKey(3)))
	bundle := filepath.Join(dir, "trusted.pub")
	if err := os.WriteFile(bundle, []byte("# team keys\n"+b+"\n\n  "+c+"\n"+a+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadTrustedKeys([]string{a, bundle})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, FormatPublicKey(k))
	}
	if strings.Join(got, " ") != strings.Join([]string{a, b, c}, " ") {
		t.Fatalf("keys = %v", got)
	}
	if keys, err := LoadTrustedKeys(nil); err != nil || len(keys) != 0 {
		t.Fatalf("no values: %v, %v", keys, err)
	}

	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte(a+"\nnot a key\n"), 0o644)
	empty := filepath.Join(dir, "empty.pub")
	os.WriteFile(empty, []byte("# none\n"), 0o644)
	_, privPath, err := GenerateKeyPair(filepath.Join(dir, "priv"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(privPath)
	_, err = LoadTrustedKeys([]string{privPath})
	if !errors.Is(err, ErrBadKey) {
		t.Errorf("private key file as trusted key: err = %v", err)
	}
	seedText := strings.TrimSpace(string(secret[strings.LastIndex(string(secret), "ed25519-private:"):]))
	if strings.Contains(err.Error(), strings.TrimPrefix(seedText, "ed25519-private:")[:20]) {
		t.Errorf("error leaks private key material: %v", err)
	}
	for _, v := range []string{"ed25519:AAAA", bad, empty, ""} {
		if _, err := LoadTrustedKeys([]string{v}); !errors.Is(err, ErrBadKey) {
			t.Errorf("LoadTrustedKeys(%q) err = %v, want ErrBadKey", v, err)
		}
	}
	if _, err := LoadTrustedKeys([]string{filepath.Join(dir, "missing.pub")}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file err = %v", err)
	}
	if _, err := LoadTrustedKeys([]string{dir}); !errors.Is(err, ErrBadKey) {
		t.Errorf("directory err = %v", err)
	}
}

// Handing the public key where the private one belongs says so, whatever
// the file's mode.
func TestReadPrivateKeyGivenPublicKey(t *testing.T) {
	pub, _, err := GenerateKeyPair(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadPrivateKey(pub)
	if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "this is a public key") {
		t.Fatalf("got %v", err)
	}
}
