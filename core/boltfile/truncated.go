package boltfile

import (
	"encoding/binary"
	"hash/fnv"
	"os"
)

// Offsets in a bbolt file: each of the two meta pages starts with a 16-byte
// page header, then magic, version, page size, flags, the root bucket (16
// bytes), the freelist page, the high-water page id, the transaction id and
// an FNV-64a checksum of everything before it.
const (
	boltPageHeader  = 16
	boltMagic       = 0xED0CDAED
	boltMetaSummed  = 56 // bytes of meta covered by the checksum
	boltMetaPgid    = 40
	boltMetaTxid    = 48
	boltMetaPageSz  = 8
	boltMetaVersion = 2
)

// Truncated reports whether the bbolt file at path is shorter than the
// pages its newest valid meta page says it holds, and both sizes. It reads
// the file's first bytes only; any doubt answers false.
func Truncated(path string) (span, size int64, truncated bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, false
	}
	size = fi.Size()
	var best struct {
		txid, span uint64
		ok         bool
	}
	readMeta := func(off int64) (pageSize uint32, ok bool) {
		buf := make([]byte, boltPageHeader+boltMetaSummed+8)
		if _, err := f.ReadAt(buf, off); err != nil {
			return 0, false
		}
		m := buf[boltPageHeader:]
		le := binary.LittleEndian
		h := fnv.New64a()
		h.Write(m[:boltMetaSummed])
		if le.Uint32(m) != boltMagic || le.Uint32(m[4:]) != boltMetaVersion || le.Uint64(m[boltMetaSummed:]) != h.Sum64() {
			return 0, false
		}
		pageSize = le.Uint32(m[boltMetaPageSz:])
		if txid := le.Uint64(m[boltMetaTxid:]); !best.ok || txid > best.txid {
			best.txid, best.span, best.ok = txid, le.Uint64(m[boltMetaPgid:])*uint64(pageSize), true
		}
		return pageSize, true
	}
	ps, ok := readMeta(0)
	if !ok {
		// Meta 0 is damaged: meta 1 is one page further, of a size to guess.
		ps = uint32(os.Getpagesize())
	}
	readMeta(int64(ps))
	if !best.ok || best.span <= uint64(size) {
		return 0, size, false
	}
	return int64(best.span), size, true
}
