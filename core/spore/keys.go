package spore

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	publicKeyPrefix  = "ed25519:"
	privateKeyPrefix = "ed25519-private:"
	maxKeyFileSize   = 1 << 20
)

// FormatPublicKey returns the printable form of k: "ed25519:<base64>".
func FormatPublicKey(k ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(k)
}

// ParsePublicKey parses "ed25519:<standard base64 of 32 bytes>"; surrounding
// spaces are ignored.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, privateKeyPrefix) {
		// Never echo private key material into an error message.
		return nil, fmt.Errorf("%w: got a private key where a public key belongs (use the .pub file)", ErrBadKey)
	}
	rest, ok := strings.CutPrefix(s, publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: public key %q does not start with %q", ErrBadKey, abbreviate(s), publicKeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: public key %q: not standard base64", ErrBadKey, abbreviate(s))
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key %q: %d bytes, want %d", ErrBadKey, abbreviate(s), len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// LoadTrustedKeys turns each value into public keys: a value starting with
// "ed25519:" is a key itself, anything else is the path of a file holding one
// or more keys, one per line (blank lines and '#' comments ignored).
// Duplicates are dropped. No values yields an empty set, which Verify refuses.
func LoadTrustedKeys(values []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	seen := map[string]bool{}
	add := func(k ed25519.PublicKey) {
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, publicKeyPrefix) {
			k, err := ParsePublicKey(v)
			if err != nil {
				return nil, fmt.Errorf("trusted key: %w", err)
			}
			add(k)
			continue
		}
		if v == "" {
			return nil, fmt.Errorf("trusted key: %w: empty value", ErrBadKey)
		}
		lines, err := readKeyFile(v)
		if err != nil {
			return nil, fmt.Errorf("trusted key file: %w", err)
		}
		n := 0
		for _, l := range lines {
			k, err := ParsePublicKey(l.text)
			if err != nil {
				return nil, fmt.Errorf("trusted key file %s:%d: %w", v, l.no, err)
			}
			add(k)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("trusted key file %s: %w: no public key in it", v, ErrBadKey)
		}
	}
	return keys, nil
}

type keyLine struct {
	no   int
	text string
}

// readKeyFile returns the non-comment, non-blank lines of a small text file.
func readKeyFile(path string) ([]keyLine, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	var out []keyLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFileSize)
	for no := 1; sc.Scan(); no++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, keyLine{no, t})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrBadKey)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%s: %w: file larger than %d bytes", path, ErrBadKey, maxKeyFileSize)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// ReadPrivateKey reads a private key file written by GenerateKeyPair. It
// refuses a file that group or others may access.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	lines, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0].text, publicKeyPrefix) {
		return nil, fmt.Errorf("read private key %s: %w: this is a public key; sign with the matching .key file", path, ErrBadKey)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("read private key %s: %w: mode %#o, want 0600 (chmod 600 %s)", path, ErrInsecureKeyFile, st.Mode().Perm(), path)
	}
	if len(lines) != 1 {
		return nil, fmt.Errorf("read private key %s: %w: want exactly one key line, found %d", path, ErrBadKey, len(lines))
	}
	rest, ok := strings.CutPrefix(lines[0].text, privateKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("read private key %s:%d: %w: line does not start with %q", path, lines[0].no, ErrBadKey, privateKeyPrefix)
	}
	seed, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("read private key %s:%d: %w: want standard base64 of a %d-byte seed", path, lines[0].no, ErrBadKey, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// GenerateKeyPair creates a new ed25519 key pair and writes PREFIX.pub (mode
// 0644) and PREFIX.key (mode 0600). It never overwrites: if either file
// exists it fails (wrapping fs.ErrExist) and writes nothing.
func GenerateKeyPair(prefix string) (pubPath, privPath string, err error) {
	if prefix == "" {
		return "", "", errors.New("generate key pair: empty file prefix")
	}
	pubPath, privPath = prefix+".pub", prefix+".key"
	for _, p := range []string{pubPath, privPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("generate key pair: %s: %w", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("generate key pair: %w", err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	pubText := FormatPublicKey(pub)
	privFile := "# Mycelium Mesh ed25519 private key (RFC 8032 seed). Keep it secret.\n" +
		"# Public key: " + pubText + "\n" +
		privateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
	pubFile := "# Mycelium Mesh ed25519 public key. Trust it to accept spores it signs.\n" +
		pubText + "\n"
	if err := writeNewFile(privPath, []byte(privFile), 0o600); err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	if err := writeNewFile(pubPath, []byte(pubFile), 0o644); err != nil {
		os.Remove(privPath)
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	return pubPath, privPath, nil
}

// writeNewFile writes data to path with perm, all or nothing, failing if
// path exists: the content goes to a temporary file that is then hard-linked
// into place (link refuses to replace an existing name).
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
