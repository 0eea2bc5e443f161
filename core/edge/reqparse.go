package edge

import (
	"bytes"
	"net/http"
	"net/url"

	"golang.org/x/net/http/httpguts"
)

// The edge's connection loop parses the request heads it is sure to parse
// as net/http would, and only those: an HTTP/1.1 request line with an
// origin-form target, CRLF-terminated fields with token names, one valid
// Host, no body (no Transfer-Encoding, no Content-Length but "0"), no
// Expect and no upgrade. Any other head, malformed or merely unusual, is
// handed with its connection to net/http's server (serve.go), whose answer
// (a 400, 431, 417, 505, or a request it serves) is then the edge's. The
// parse fills the connection's reusable request in place: one string for
// the whole head, and every method, key and value a piece of it.

// parseHead parses head, a request head ending in its empty line, into c's
// request. It reports false for a head it leaves to net/http.
func (c *clientConn) parseHead(head []byte) bool {
	head = head[:len(head):len(head)] // at() counts on it
	// Every line must end in CRLF and hold no other CR or LF.
	if bytes.Count(head, []byte{'\n'}) != bytes.Count(head, []byte{'\r'}) {
		return false
	}
	line, rest, _ := bytes.Cut(head, crlf)
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return false
	}
	method := line[:sp1]
	target := line[sp1+1:]
	sp2 := bytes.IndexByte(target, ' ')
	if sp2 <= 0 || string(target[sp2+1:]) != "HTTP/1.1" {
		return false
	}
	target = target[:sp2]
	if target[0] != '/' {
		return false // absolute-form, '*': net/http
	}
	for _, b := range method {
		if b < 'A' || b > 'Z' {
			return false
		}
	}
	if string(method) == http.MethodConnect || string(method) == "PRI" {
		return false
	}
	hs := string(head) // every string of the request is a piece of it
	at := func(b []byte) string {
		off := len(head) - cap(b) // b is a sub-slice of head
		return hs[off : off+len(b)]
	}
	r := &c.req
	h := c.hdr
	clear(h)
	c.vals = c.vals[:0]
	hosts := 0
	var host string
	for len(rest) > 2 {
		var f []byte
		f, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(f, ':')
		if colon <= 0 || !tokenBytes(f[:colon]) {
			return false // obs-fold, space before the colon, no name
		}
		v := trimOWS(f[colon+1:])
		if !fieldValueBytes(v) {
			return false
		}
		key := c.canonicalKey(f[:colon], at)
		val := at(v)
		switch key {
		case "Host":
			hosts++
			host = val
			continue // net/http keeps it out of Header
		case "Transfer-Encoding", "Expect", "Upgrade":
			return false
		case "Content-Length":
			if val != "0" || len(h[key]) > 0 {
				return false
			}
		}
		c.vals = append(c.vals, val)
		n := len(c.vals)
		if vv := h[key]; vv != nil {
			h[key] = append(vv, val)
		} else {
			h[key] = c.vals[n-1 : n : n]
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(host) {
		return false
	}
	conn := h["Connection"]
	if httpguts.HeaderValuesContainsToken(conn, "upgrade") {
		return false
	}
	if hp := h["Pragma"]; len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = noCache
		}
	}
	u := &c.url
	*u = url.URL{}
	ts := at(target)
	if !c.simpleTarget(target, ts) {
		pu, err := url.ParseRequestURI(ts)
		if err != nil {
			return false
		}
		*u = *pu
	}
	*r = c.reqBase
	r.Method = internMethod(method, at)
	r.URL = u
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header = h
	r.Body = http.NoBody
	r.Host = host
	r.RequestURI = ts
	r.RemoteAddr = c.remote
	r.Close = httpguts.HeaderValuesContainsToken(conn, "close")
	return true
}

var (
	crlf    = []byte("\r\n")
	noCache = []string{"no-cache"}
)

// simpleTarget fills c.url for a target that url.ParseRequestURI would take
// as it is: path bytes that need no escaping, a query of visible ASCII.
func (c *clientConn) simpleTarget(t []byte, ts string) bool {
	q := bytes.IndexByte(t, '?')
	p := t
	if q >= 0 {
		p = t[:q]
	}
	for _, b := range p {
		if !pathByte[b] {
			return false
		}
	}
	if q < 0 {
		c.url.Path = ts
		return true
	}
	for _, b := range t[q+1:] {
		if b <= ' ' || b >= 0x7f || b == '#' {
			return false
		}
	}
	c.url.Path = ts[:q]
	if q == len(t)-1 {
		c.url.ForceQuery = true
	} else {
		c.url.RawQuery = ts[q+1:]
	}
	return true
}

// pathByte marks the bytes url.URL keeps unescaped in a path: a path of
// only these has no RawPath.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// tokenBytes tells whether b is an RFC 9110 token (a valid field name).
func tokenBytes(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// fieldValueBytes tells whether b may be a field value: no control byte
// but tab.
func fieldValueBytes(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// canonicalKey returns the canonical form of the field name k (as
// textproto spells it): a piece of the head when the client spelled it so,
// a well-known name, or a new string.
func (c *clientConn) canonicalKey(k []byte, at func([]byte) string) string {
	upper := true
	canonical := true
	for _, b := range k {
		if upper && 'a' <= b && b <= 'z' || !upper && 'A' <= b && b <= 'Z' {
			canonical = false
			break
		}
		upper = b == '-'
	}
	if canonical {
		return at(k)
	}
	buf := c.keyBuf[:0]
	upper = true
	for _, b := range k {
		switch {
		case upper && 'a' <= b && b <= 'z':
			b -= 'a' - 'A'
		case !upper && 'A' <= b && b <= 'Z':
			b += 'a' - 'A'
		}
		buf = append(buf, b)
		upper = b == '-'
	}
	c.keyBuf = buf
	if s, ok := commonKeys[string(buf)]; ok {
		return s
	}
	return string(buf)
}

// commonKeys are field names often sent in another case (HTTP/2 habits,
// hand-written clients); interned so that they cost no allocation.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization",
		"Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie", "Host",
		"If-Modified-Since", "If-None-Match", "Origin", "Pragma", "Referer", "Te",
		"User-Agent", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Forwarded", HeaderEdge} {
		m[k] = k
	}
	return m
}()

func internMethod(m []byte, at func([]byte) string) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	}
	return at(m)
}

// headEnd returns the length of the request head at the start of b, up to
// and including its empty line, or -1 while it is incomplete. A head ended
// by a bare LF is found too; parseHead then leaves it to net/http.
func headEnd(b []byte) int {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		end := start + i + 1
		if n := end - start; start > 0 && (n == 1 || n == 2 && b[start] == '\r') {
			return end
		}
		start = end
	}
}
