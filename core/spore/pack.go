package spore

import (
	"archive/zip"
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// copyBufSize is the chunk size used to stream binaries through hashers.
const copyBufSize = 256 << 10

// Pack writes a spore holding the binary at binaryPath and m to w, signed
// with key. It fills m.Integrity (binary digest, public key, creation time,
// signature), defaults identity.kind to "Spore" and runtime.command to
// "./binary", and returns the manifest it wrote. The binary is streamed
// once, stored uncompressed: memory use does not depend on its size.
func Pack(w io.Writer, binaryPath string, m Manifest, key ed25519.PrivateKey) (Manifest, error) {
	m, err := pack(w, binaryPath, m, key, time.Now())
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", binaryPath, err)
	}
	return m, nil
}

func pack(w io.Writer, binaryPath string, m Manifest, key ed25519.PrivateKey, now time.Time) (Manifest, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Manifest{}, fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadKey, len(key), ed25519.PrivateKeySize)
	}
	m.Integrity = Integrity{}
	if err := m.prepare(); err != nil {
		return Manifest{}, err
	}
	f, err := os.Open(binaryPath)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Manifest{}, err
	}
	if !st.Mode().IsRegular() {
		return Manifest{}, fmt.Errorf("binary is not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > MaxBinarySize {
		return Manifest{}, fmt.Errorf("%w: binary is %d bytes, limit %d", ErrTooLarge, st.Size(), MaxBinarySize)
	}
	created := now.UTC().Truncate(time.Second)

	zw := zip.NewWriter(w)
	hdr := &zip.FileHeader{Name: BinaryEntry, Method: zip.Store, Modified: created}
	hdr.SetMode(0o755)
	ew, err := zw.CreateHeader(hdr)
	if err != nil {
		return Manifest{}, fmt.Errorf("write binary entry: %w", err)
	}
	h := sha256.New()
	buf := make([]byte, copyBufSize)
	n, err := io.CopyBuffer(io.MultiWriter(ew, h), readerOnly{io.LimitReader(f, MaxBinarySize+1)}, buf)
	if err != nil {
		return Manifest{}, fmt.Errorf("copy binary: %w", err)
	}
	if n > MaxBinarySize {
		return Manifest{}, fmt.Errorf("%w: binary grew past %d bytes while packing", ErrTooLarge, int64(MaxBinarySize))
	}

	pub := key.Public().(ed25519.PublicKey)
	m.Integrity = Integrity{
		BinarySHA256: hex.EncodeToString(h.Sum(nil)),
		PublicKey:    FormatPublicKey(pub),
		CreatedAt:    created.Format(time.RFC3339),
	}
	if m.Integrity.Signature, err = sign(m, key); err != nil {
		return Manifest{}, fmt.Errorf("sign manifest: %w", err)
	}
	mj, err := encodePretty(m)
	if err != nil {
		return Manifest{}, err
	}
	if len(mj) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: %d bytes, limit %d", ErrManifestTooLarge, len(mj), MaxManifestSize)
	}
	hdr = &zip.FileHeader{Name: ManifestEntry, Method: zip.Deflate, Modified: created}
	hdr.SetMode(0o644)
	mw, err := zw.CreateHeader(hdr)
	if err != nil {
		return Manifest{}, fmt.Errorf("write manifest entry: %w", err)
	}
	if _, err := mw.Write(mj); err != nil {
		return Manifest{}, fmt.Errorf("write manifest entry: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("finish archive: %w", err)
	}
	return m, nil
}

// sign returns the base64 signature over m (whose signature field is ignored).
func sign(m Manifest, key ed25519.PrivateKey) (string, error) {
	d, err := signedDigest(m)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, d)), nil
}

// PackFile is Pack writing to outPath atomically: the spore is written to a
// temporary file beside outPath, synced and renamed into place, so outPath
// never holds a partial spore.
func PackFile(outPath, binaryPath string, m Manifest, key ed25519.PrivateKey) (Manifest, error) {
	dir := filepath.Dir(outPath)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(outPath)+".tmp-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", outPath, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, copyBufSize)
	out, err := Pack(bw, binaryPath, m, key)
	if err != nil {
		return Manifest{}, err
	}
	err = errors.Join(bw.Flush(), tmp.Chmod(0o644), tmp.Sync(), tmp.Close())
	if err != nil {
		return Manifest{}, fmt.Errorf("pack %s: write: %w", outPath, err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return Manifest{}, fmt.Errorf("pack %s: %w", outPath, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return Manifest{}, fmt.Errorf("pack %s: sync directory: %w", outPath, err)
	}
	return out, nil
}

// readerOnly hides any WriterTo/ReaderFrom so io.CopyBuffer uses our buffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
