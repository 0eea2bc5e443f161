package provision

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/packed"
)

// Default limits of a Reader.
const (
	DefaultMaxMessageSize = 1 << 20 // bytes, unpacked, header included
	DefaultTraverseLimit  = 4 << 20 // bytes a decode may read through pointers
	maxSegments           = 512     // segments in one message
)

// ErrFraming is wrapped by every error that leaves a stream unusable: a
// truncated message, a garbage header. Packed Cap'n Proto has no sync
// marker, so nothing after such an error can be trusted.
var ErrFraming = errors.New("framing error")

// ErrTooLarge is wrapped by the refusal of a message above the size limit.
// The stream goes on: the message's body is skipped without being held.
var ErrTooLarge = errors.New("message too large")

// Limits bound what one message may cost.
type Limits struct {
	// MaxMessageSize is the largest message accepted, in unpacked bytes.
	MaxMessageSize uint64
	// TraverseLimit bounds the bytes Decode may read from one message,
	// counting data reached twice through shared pointers twice.
	TraverseLimit uint64
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = DefaultMaxMessageSize
	}
	if l.TraverseLimit == 0 {
		l.TraverseLimit = DefaultTraverseLimit
	}
	return l
}

// Reader cuts a stream of packed Cap'n Proto messages into messages. It
// reads only as far as the message it returns needs (plus what bufio holds),
// so a message is available as soon as its last byte arrives, and it never
// buffers more than one message.
type Reader struct {
	r      io.Reader
	limits Limits
	hdr    []byte
	n      int // messages returned so far
}

// NewReader reads packed messages from r under limits (zero fields take the
// defaults).
func NewReader(r io.Reader, limits Limits) *Reader {
	return &Reader{r: packed.NewReader(bufio.NewReader(r)), limits: limits.withDefaults()}
}

// Next returns the next message. At the clean end of the stream (no byte of
// a new message read) it returns io.EOF. An error wrapping ErrTooLarge is a
// refusal of one message; the next call goes on with the following one. Any
// other error wraps ErrFraming and ends the stream.
func (r *Reader) Next() (*capnp.Message, error) {
	idx := r.n
	r.n++
	var first [8]byte
	if _, err := io.ReadFull(r.r, first[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("message %d: read header: %w: %w", idx, ErrFraming, err)
	}
	nseg := uint64(binary.LittleEndian.Uint32(first[:4])) + 1
	if nseg > maxSegments {
		return nil, fmt.Errorf("message %d: %w: %d segments (at most %d)", idx, ErrFraming, nseg, maxSegments)
	}
	// Header: 4 bytes of count, 4 bytes per segment size, padded to a word.
	hdrLen := (4 + 4*nseg + 7) &^ 7
	if cap(r.hdr) < int(hdrLen) {
		r.hdr = make([]byte, hdrLen)
	}
	hdr := r.hdr[:hdrLen]
	copy(hdr, first[:])
	if _, err := io.ReadFull(r.r, hdr[8:]); err != nil {
		return nil, fmt.Errorf("message %d: read header: %w: %w", idx, ErrFraming, unexpected(err))
	}
	var body uint64
	for i := uint64(0); i < nseg; i++ {
		body += uint64(binary.LittleEndian.Uint32(hdr[4+4*i:])) * 8
	}
	if total := hdrLen + body; total > r.limits.MaxMessageSize {
		if _, err := io.CopyN(io.Discard, r.r, int64(body)); err != nil {
			return nil, fmt.Errorf("message %d: skip oversized body: %w: %w", idx, ErrFraming, unexpected(err))
		}
		return nil, fmt.Errorf("message %d: %w: %d bytes, at most %d (-max-message-size)", idx, ErrTooLarge, total, r.limits.MaxMessageSize)
	}
	buf := make([]byte, hdrLen+body)
	copy(buf, hdr)
	if _, err := io.ReadFull(r.r, buf[hdrLen:]); err != nil {
		return nil, fmt.Errorf("message %d: read %d body bytes: %w: %w", idx, body, ErrFraming, unexpected(err))
	}
	msg, err := capnp.Unmarshal(buf)
	if err != nil {
		return nil, fmt.Errorf("message %d: %w: %w", idx, ErrFraming, err)
	}
	msg.ResetReadLimit(r.limits.TraverseLimit)
	return msg, nil
}

// Index is the zero-based position in the stream of the message the last
// call to Next was about.
func (r *Reader) Index() int { return r.n - 1 }

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Writer writes packed messages one after another, as a stream.
type Writer struct{ enc *capnp.Encoder }

// NewWriter writes packed messages to w.
func NewWriter(w io.Writer) *Writer { return &Writer{enc: capnp.NewPackedEncoder(w)} }

// Write appends one message to the stream.
func (w *Writer) Write(msg *capnp.Message) error {
	if err := w.enc.Encode(msg); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}
