package sitesnap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// A bundle is a static file server executable with a site's snapshot (a
// tar stream, as WriteTar writes it) appended, followed by a trailer: the
// archive's length as 8 little-endian bytes and the magic bundleMagic.
// Executables ignore what follows their last section, so the bundle runs
// as the server and finds its site in itself; a spore signs it as one
// binary.
const bundleMagic = "MESHSITE"

// ErrNoBundle is returned by OpenBundle for a file without a site.
var ErrNoBundle = errors.New("no site bundled")

// WriteBundle writes server's bytes, then the files of m read from dir,
// then the trailer.
func WriteBundle(w io.Writer, server, dir string, m Manifest) error {
	f, err := os.Open(server)
	if err != nil {
		return fmt.Errorf("open server: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy server: %w", err)
	}
	cw := &countingWriter{w: w}
	if err := WriteTar(cw, dir, m); err != nil {
		return err
	}
	var trailer [16]byte
	binary.LittleEndian.PutUint64(trailer[:8], uint64(cw.n))
	copy(trailer[8:], bundleMagic)
	if _, err := w.Write(trailer[:]); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// OpenBundle returns the site archive appended to the file f.
func OpenBundle(f *os.File) (io.Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat bundle: %w", err)
	}
	var trailer [16]byte
	if fi.Size() < 16 {
		return nil, ErrNoBundle
	}
	if _, err := f.ReadAt(trailer[:], fi.Size()-16); err != nil {
		return nil, fmt.Errorf("read trailer: %w", err)
	}
	if string(trailer[8:]) != bundleMagic {
		return nil, ErrNoBundle
	}
	n := int64(binary.LittleEndian.Uint64(trailer[:8]))
	if n < 0 || n > fi.Size()-16 {
		return nil, fmt.Errorf("%w: archive length %d in a %d-byte file", ErrUnsafe, n, fi.Size())
	}
	return io.NewSectionReader(f, fi.Size()-16-n, n), nil
}
