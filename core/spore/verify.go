package spore

import (
	"archive/zip"
	"compress/flate"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxDeflateRatio bounds how much a deflate stream can expand: DEFLATE cannot
// exceed about 1032:1, so a header claiming more is lying.
const maxDeflateRatio = 1032

// Verify checks the spore at sporePath completely without writing anything:
// archive layout and sizes, manifest schema and kind, the signer's key
// against trusted (an empty set refuses everything), the signature, and the
// binary's SHA-256. It returns the verified manifest. Every refusal wraps one
// of the Err* sentinels.
func Verify(sporePath string, trusted []ed25519.PublicKey) (Manifest, error) {
	a, err := openArchive(sporePath)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify %s: %w", sporePath, err)
	}
	defer a.close()
	m, _, err := a.verify(trusted)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify %s: %w", sporePath, err)
	}
	return m, nil
}

// Extract verifies the spore like Verify and only then writes manifest.json
// (mode 0644) and binary (mode 0755) into dir, creating dir if needed. Files
// are written under temporary names and renamed into place, and the binary
// is hashed again as it is written, so a refused spore leaves nothing in dir.
func Extract(sporePath string, trusted []ed25519.PublicKey, dir string) (Manifest, error) {
	a, err := openArchive(sporePath)
	if err != nil {
		return Manifest{}, fmt.Errorf("extract %s: %w", sporePath, err)
	}
	defer a.close()
	// The manifest, signature and trust are checked before anything is
	// written; the binary is hashed in the same pass that copies it into a
	// private temporary file (mode 0600), which is made executable and
	// renamed into place only when its sha256 matches.
	m, raw, err := a.verifyManifest(trusted)
	if err != nil {
		return Manifest{}, fmt.Errorf("extract %s: %w", sporePath, err)
	}
	if err := a.extract(m, raw, dir); err != nil {
		if errors.Is(err, ErrBinaryDigest) {
			return Manifest{}, fmt.Errorf("extract %s: %w", sporePath, err)
		}
		return Manifest{}, fmt.Errorf("extract %s into %s: %w", sporePath, dir, err)
	}
	return m, nil
}

// ReadManifest returns the manifest of the spore at sporePath after checking
// the archive layout and decoding the JSON, but WITHOUT checking the
// signature, the signer's trust or the binary: for display only.
func ReadManifest(sporePath string) (Manifest, error) {
	a, err := openArchive(sporePath)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s: %w", sporePath, err)
	}
	defer a.close()
	raw, err := a.readManifest()
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s: %w", sporePath, err)
	}
	m, err := decodeStrict(raw, nil)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s: %w", sporePath, err)
	}
	return m, nil
}

// maxDirectoryRead bounds the bytes read while opening the zip (end record
// search and central directory). A spore's directory is a few hundred bytes.
const maxDirectoryRead = 1 << 20

var errDirectoryTooLarge = errors.New("central directory read budget exhausted")

// budgetReaderAt fails reads once a byte budget is spent, while on is set.
type budgetReaderAt struct {
	r      io.ReaderAt
	budget int64
	on     bool
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.on {
		if int64(len(p)) > b.budget {
			return 0, errDirectoryTooLarge
		}
		b.budget -= int64(len(p))
	}
	return b.r.ReadAt(p, off)
}

// archive is an open spore whose layout has been checked.
type archive struct {
	f        *os.File
	manifest *zip.File
	binary   *zip.File
}

func (a *archive) close() { a.f.Close() }

// openArchive opens path as a zip and checks that it holds exactly the two
// expected regular-file entries with safe names.
func openArchive(path string) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: not a regular file", ErrBadArchive)
	}
	// Reading the central directory allocates per entry and runs to the end
	// of the file whatever the entry count says, so bound what it may read.
	br := &budgetReaderAt{r: f, budget: maxDirectoryRead, on: true}
	zr, err := zip.NewReader(br, st.Size())
	br.on = false
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		f.Close()
		if errors.Is(err, errDirectoryTooLarge) {
			return nil, fmt.Errorf("%w: central directory larger than %d bytes", ErrBadArchive, maxDirectoryRead)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	a := &archive{f: f}
	if err := a.checkLayout(zr.File); err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

func (a *archive) checkLayout(files []*zip.File) error {
	// Safety first, over every entry, so that the most serious problem is
	// the one reported whatever the entry order.
	for _, zf := range files {
		if why := unsafeEntry(zf); why != "" {
			return fmt.Errorf("%w: %q: %s", ErrUnsafeEntry, printable(zf.Name), why)
		}
	}
	for _, zf := range files {
		var slot **zip.File
		switch zf.Name {
		case ManifestEntry:
			slot = &a.manifest
		case BinaryEntry:
			slot = &a.binary
		default:
			return fmt.Errorf("%w: %q (a spore holds only %s and %s)", ErrExtraEntry, printable(zf.Name), ManifestEntry, BinaryEntry)
		}
		if *slot != nil {
			return fmt.Errorf("%w: %q", ErrDuplicateEntry, zf.Name)
		}
		*slot = zf
	}
	if a.manifest == nil {
		return fmt.Errorf("%w: %s", ErrMissingEntry, ManifestEntry)
	}
	if a.binary == nil {
		return fmt.Errorf("%w: %s", ErrMissingEntry, BinaryEntry)
	}
	for _, zf := range []*zip.File{a.manifest, a.binary} {
		if zf.Flags&0x1 != 0 {
			return fmt.Errorf("%w: %s is encrypted", ErrBadArchive, zf.Name)
		}
		if zf.Method != zip.Store && zf.Method != zip.Deflate {
			return fmt.Errorf("%w: %s uses unsupported compression method %d", ErrBadArchive, zf.Name, zf.Method)
		}
	}
	return nil
}

// unsafeEntry says why an entry may not be extracted, or "" if it may.
func unsafeEntry(zf *zip.File) string {
	name := zf.Name
	switch {
	case name == "":
		return "empty name"
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || len(name) >= 2 && name[1] == ':':
		return "absolute path"
	case strings.Contains(name, `\`):
		return "backslash in name"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "control character in name"
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "parent directory reference"
		}
	}
	mode := zf.Mode()
	switch {
	case strings.HasSuffix(name, "/") || mode.IsDir():
		return "directory entry"
	case mode&fs.ModeSymlink != 0:
		return "symbolic link"
	case !mode.IsRegular():
		return "not a regular file (" + mode.Type().String() + ")"
	}
	return ""
}

func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return abbreviate(s)
}

// readManifest returns manifest.json's bytes, bounded by MaxManifestSize.
func (a *archive) readManifest() ([]byte, error) {
	zf := a.manifest
	if zf.UncompressedSize64 > MaxManifestSize {
		return nil, fmt.Errorf("%w: %s declares %d bytes, limit %d", ErrManifestTooLarge, zf.Name, zf.UncompressedSize64, MaxManifestSize)
	}
	var b strings.Builder
	b.Grow(int(zf.UncompressedSize64))
	if _, err := copyEntry(&b, zf, ErrManifestTooLarge); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// verify runs every check and returns the manifest and its raw bytes.
// verifyManifest checks the manifest, its signature, the signer's trust and
// the binary entry's header: everything but the binary's bytes.
func (a *archive) verifyManifest(trusted []ed25519.PublicKey) (Manifest, []byte, error) {
	raw, err := a.readManifest()
	if err != nil {
		return Manifest{}, nil, err
	}
	m, err := DecodeManifest(raw)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("%s: %w", ManifestEntry, err)
	}
	// Trust and signature cover only the manifest: check them before
	// reading what may be gigabytes of binary.
	signer, err := ParsePublicKey(m.Integrity.PublicKey)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if len(trusted) == 0 {
		return Manifest{}, nil, fmt.Errorf("%w: no trusted keys configured, refusing every spore", ErrUntrustedKey)
	}
	if !containsKey(trusted, signer) {
		return Manifest{}, nil, fmt.Errorf("%w: spore signed by %s", ErrUntrustedKey, m.Integrity.PublicKey)
	}
	sig, err := decodeSignature(m.Integrity.Signature)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("%w: integrity.signature: %v", ErrBadManifest, err)
	}
	d, err := signedDigest(m)
	if err != nil {
		return Manifest{}, nil, err
	}
	if !ed25519.Verify(signer, d, sig) {
		return Manifest{}, nil, fmt.Errorf("%w: manifest of %s %s does not match its signature by %s", ErrBadSignature, m.Identity.Name, m.Identity.Version, m.Integrity.PublicKey)
	}
	if err := a.checkBinaryHeader(); err != nil {
		return Manifest{}, nil, err
	}
	return m, raw, nil
}

// verify checks everything verifyManifest does, then the binary's sha256.
func (a *archive) verify(trusted []ed25519.PublicKey) (Manifest, []byte, error) {
	m, raw, err := a.verifyManifest(trusted)
	if err != nil {
		return Manifest{}, nil, err
	}
	sum, err := a.hashBinary(io.Discard)
	if err != nil {
		return Manifest{}, nil, err
	}
	if sum != m.Integrity.BinarySHA256 {
		return Manifest{}, nil, fmt.Errorf("%w: binary has sha256 %s, manifest says %s", ErrBinaryDigest, sum, m.Integrity.BinarySHA256)
	}
	return m, raw, nil
}

func containsKey(set []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, t := range set {
		if t.Equal(k) {
			return true
		}
	}
	return false
}

func (a *archive) checkBinaryHeader() error {
	zf := a.binary
	if zf.UncompressedSize64 > MaxBinarySize {
		return fmt.Errorf("%w: binary declares %d bytes, limit %d", ErrTooLarge, zf.UncompressedSize64, int64(MaxBinarySize))
	}
	if zf.Method == zip.Deflate && zf.UncompressedSize64 > zf.CompressedSize64*maxDeflateRatio+1024 {
		return fmt.Errorf("%w: binary claims %d bytes from %d compressed, beyond what deflate can produce", ErrTooLarge, zf.UncompressedSize64, zf.CompressedSize64)
	}
	return nil
}

// hashBinary streams the binary into w and returns its lowercase hex SHA-256.
func (a *archive) hashBinary(w io.Writer) (string, error) {
	h := sha256.New()
	if _, err := copyEntry(io.MultiWriter(w, h), a.binary, ErrTooLarge); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract writes the verified spore into dir (see Extract).
func (a *archive) extract(m Manifest, rawManifest []byte, dir string) (err error) {
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, t := range tmps {
				os.Remove(t)
			}
			if created {
				os.Remove(dir) // only if still empty
			}
		}
	}()
	bin, err := os.CreateTemp(dir, ".binary.tmp-*")
	if err != nil {
		return err
	}
	tmps = append(tmps, bin.Name())
	sum, err := a.hashBinary(bin)
	if err == nil && sum != m.Integrity.BinarySHA256 {
		err = fmt.Errorf("%w: binary has sha256 %s, manifest says %s", ErrBinaryDigest, sum, m.Integrity.BinarySHA256)
	}
	if err == nil {
		err = bin.Chmod(0o755)
	}
	if cerr := bin.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	man, err := os.CreateTemp(dir, ".manifest.json.tmp-*")
	if err != nil {
		return err
	}
	tmps = append(tmps, man.Name())
	_, err = man.Write(rawManifest)
	if err == nil {
		err = man.Chmod(0o644)
	}
	if cerr := man.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	binPath := filepath.Join(dir, BinaryEntry)
	if err := os.Rename(bin.Name(), binPath); err != nil {
		return err
	}
	if err := os.Rename(man.Name(), filepath.Join(dir, ManifestEntry)); err != nil {
		os.Remove(binPath)
		return err
	}
	return nil
}

// readErr marks an error that came from reading the archive, as opposed to
// writing to the destination.
type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }
func (e readErr) Unwrap() error { return e.err }

type taggedReader struct{ r io.Reader }

func (t taggedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = readErr{err}
	}
	return n, err
}

// copyEntry decompresses zf into dst, counting the bytes actually produced:
// it stops one byte past the declared size (tooLarge, a zip bomb) and
// refuses an entry that is shorter than declared or fails its CRC-32.
func copyEntry(dst io.Writer, zf *zip.File, tooLarge error) (int64, error) {
	raw, err := zf.OpenRaw()
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrBadArchive, zf.Name, err)
	}
	var src io.Reader = raw
	if zf.Method == zip.Deflate {
		fr := flate.NewReader(raw)
		defer fr.Close()
		src = fr
	}
	declared := zf.UncompressedSize64
	crc := crc32.NewIEEE()
	buf := make([]byte, copyBufSize)
	n, err := io.CopyBuffer(io.MultiWriter(dst, crc), taggedReader{io.LimitReader(src, int64(declared)+1)}, buf)
	if err != nil {
		var re readErr
		if errors.As(err, &re) {
			if errors.Is(re.err, io.ErrUnexpectedEOF) {
				return n, fmt.Errorf("%w: %s ends after %d of %d declared bytes", ErrSizeMismatch, zf.Name, n, declared)
			}
			return n, fmt.Errorf("%w: %s: %v", ErrBadArchive, zf.Name, re.err)
		}
		return n, err
	}
	switch {
	case uint64(n) > declared:
		return n, fmt.Errorf("%w: %s inflates past its declared %d bytes", tooLarge, zf.Name, declared)
	case uint64(n) < declared:
		return n, fmt.Errorf("%w: %s holds %d bytes, header declares %d", ErrSizeMismatch, zf.Name, n, declared)
	case crc.Sum32() != zf.CRC32:
		return n, fmt.Errorf("%w: %s fails its CRC-32 check", ErrBadArchive, zf.Name)
	}
	return n, nil
}
