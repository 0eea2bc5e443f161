package edge

import (
	"bufio"
	"io"
	"net/http"
	"net/textproto"
)

// Nearly every endpoint answers in one plain shape: an HTTP/1.1 status line,
// CRLF-ended fields with canonical names and a Content-Length. Such a header
// is parsed here from the bytes already buffered, into one string that the
// names and values are cut from, with no per-field allocation. Anything
// else — HTTP/1.0, informational answers, chunked or close-delimited
// bodies, a Connection or Trailer field, duplicate or malformed lengths,
// obsolete line folding, bare LF line ends, bytes a field may not hold —
// goes to http.ReadResponse, which stays the reference for every framing
// rule (see the differential test).

// tokenByte marks the bytes allowed in a field name (RFC 9110 tchar).
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// plainResponse is the result of parsing a plain header.
type plainResponse struct {
	status int
	reason string // "200 OK": the status line after the version
	length int64  // Content-Length, -1 when absent
	header http.Header
	size   int // bytes of the header block, empty line included
}

// parsePlain parses the header block hdr (as awaitHeader returns it,
// without the empty line) when it has the plain shape, for an answer to a
// request with method, into h, which must be empty (nil: a new map). ok is
// false when http.ReadResponse must parse it.
// The length is the body's as http.ReadResponse reports it: 0 for 204 and
// 304, the field's (or -1) for an answer to HEAD.
func parsePlain(hdr []byte, method string, h http.Header) (p plainResponse, ok bool) {
	// "HTTP/1.1 200 OK\r\n": the status line.
	if len(hdr) < 14 || string(hdr[:9]) != "HTTP/1.1 " {
		return p, false
	}
	d0, d1, d2 := hdr[9]-'0', hdr[10]-'0', hdr[11]-'0'
	if d0 < 2 || d0 > 5 || d1 > 9 || d2 > 9 || (hdr[12] != ' ' && hdr[12] != '\r') {
		return p, false
	}
	p.status = int(d0)*100 + int(d1)*10 + int(d2)
	i := 12
	for ; i < len(hdr) && hdr[i] != '\r'; i++ {
		if c := hdr[i]; c < ' ' && c != '\t' || c == 0x7f {
			return p, false
		}
	}
	if i+1 >= len(hdr) || hdr[i+1] != '\n' {
		return p, false
	}
	i += 2
	// Count the fields first, to size the map and the values.
	n := 0
	for j := i; j < len(hdr); j++ {
		if hdr[j] == '\n' {
			n++
		}
	}
	s := string(hdr) // the one allocation names and values are cut from
	p.reason = s[9 : i-2]
	values := make([]string, n)
	if h == nil {
		h = make(http.Header, n)
	}
	p.header = h
	p.length = -1
	for f := 0; i < len(hdr); f++ {
		// name ":" OWS value OWS CRLF
		start := i
		for i < len(hdr) && tokenByte[hdr[i]] {
			i++
		}
		if i == start || i >= len(hdr) || hdr[i] != ':' {
			return p, false // no name, a space before the colon, or folding
		}
		name := s[start:i]
		i++
		for i < len(hdr) && (hdr[i] == ' ' || hdr[i] == '\t') {
			i++
		}
		vstart := i
		for ; i < len(hdr) && hdr[i] != '\r'; i++ {
			if c := hdr[i]; c < ' ' && c != '\t' || c == 0x7f {
				return p, false // a bare LF or a control byte
			}
		}
		if i+1 >= len(hdr) || hdr[i+1] != '\n' {
			return p, false
		}
		vend := i
		for vend > vstart && (hdr[vend-1] == ' ' || hdr[vend-1] == '\t') {
			vend--
		}
		i += 2
		if !canonical(name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		switch name {
		case "Connection", "Transfer-Encoding", "Trailer":
			return p, false
		case "Content-Length":
			if p.length >= 0 {
				return p, false // two of them: the reference decides
			}
			v := s[vstart:vend]
			if len(v) == 0 || len(v) > 18 {
				return p, false
			}
			var l int64
			for k := 0; k < len(v); k++ {
				if v[k] < '0' || v[k] > '9' {
					return p, false
				}
				l = l*10 + int64(v[k]-'0')
			}
			p.length = l
		}
		values[f] = s[vstart:vend]
		if vv := p.header[name]; vv != nil {
			p.header[name] = append(vv, values[f])
		} else {
			p.header[name] = values[f : f+1 : f+1]
		}
	}
	switch {
	case method == http.MethodHead:
	case p.status == http.StatusNoContent || p.status == http.StatusNotModified:
		p.length = 0 // never a body, whatever the field says
	case p.length < 0 && method != http.MethodHead:
		return p, false // close-delimited
	}
	p.size = len(hdr) + 2
	return p, true
}

// canonical tells whether a field name is already in canonical form.
func canonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// lengthBody reads the n bytes of a body from br.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
