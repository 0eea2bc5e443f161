package edge

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
)

// http.ReadResponse deletes an HTTP/1.1 answer's whole Connection field when
// it says "close", and with it the names of the other hop-by-hop headers it
// listed ("Connection: close, X-Secret"). The edge would then pass those
// headers to the client as end-to-end ones. On the edge's own pool the
// header is peeked at before it is parsed, and the field is put back when
// it named more than close; see exchange.

// peekConnection returns the values of the Connection field of the response
// header at the head of br when they name "close" and something else, and
// nil otherwise (no field, only close, or a header too large for br's
// buffer). It blocks only while the header is incomplete, which
// http.ReadResponse would do anyway.
func peekConnection(br *bufio.Reader) []string {
	hdr, _ := awaitHeader(br)
	return connectionNames(hdr)
}

// connectionNames returns the values of the Connection fields of the header
// block hdr when they name "close" and something else, and nil otherwise.
// The common answer, with no Connection field, costs two byte searches and
// no allocation.
func connectionNames(hdr []byte) []string {
	if hdr == nil {
		return nil
	}
	if bytes.Index(hdr, []byte("onnection")) < 0 && bytes.Index(hdr, []byte("ONNECTION")) < 0 {
		return nil
	}
	var vals []string
	named := false
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.IndexByte(hdr, '\n'); i >= 0 {
			line, hdr = hdr[:i], hdr[i+1:]
		} else {
			hdr = nil
		}
		const name = "connection:"
		if len(line) < len(name) || !strings.EqualFold(string(line[:len(name)]), name) {
			continue
		}
		v := strings.TrimSpace(string(line[len(name):]))
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "close") {
				named = true
			}
		}
		vals = append(vals, v)
	}
	if !named {
		return nil
	}
	return vals
}

// awaitHeader waits until br holds a whole header block (status line and
// fields up to the empty line) and returns its bytes without consuming them,
// or nil when the block does not fit in br's buffer. A read error (a
// timeout, say) leaves br as it was, so the wait can be resumed.
func awaitHeader(br *bufio.Reader) ([]byte, error) {
	n := max(br.Buffered(), 1)
	from := 0 // where the unscanned lines begin
	for first := true; ; first = false {
		b, err := br.Peek(n)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, nil
			}
			return nil, err
		}
		if first {
			// The usual header: CRLF lines, all of it already buffered.
			if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 && bytes.Index(b[:i+2], []byte("\n\n")) < 0 {
				return b[:i+2], nil
			}
		}
		// Line by line, for lines ended by a bare LF (legal too) and for
		// headers still arriving.
		for {
			i := bytes.IndexByte(b[from:], '\n')
			if i < 0 {
				break
			}
			end := from + i
			if from > 0 && (end == from || (end == from+1 && b[from] == '\r')) {
				return b[:from], nil
			}
			from = end + 1
		}
		if n >= br.Size() {
			return nil, nil
		}
		if m := br.Buffered(); m > n {
			n = m
		} else {
			n++ // the header is incomplete: wait for more of it
		}
	}
}
