package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// respWriter is the http.ResponseWriter of the edge's connection loop. It
// frames answers as net/http's server does (the same Content-Length,
// chunking, Connection, Date and sniffed Content-Type decisions, made from
// the header as it was at WriteHeader, with the same 2 KiB of body held
// back to size a body of unknown length), but keeps the answer in one
// buffer per connection: the head is sent with the first body bytes, a
// small answer in one write, a larger body with its head in one vectored
// write.
type respWriter struct {
	c   *clientConn
	req *http.Request
	h   http.Header
	out []byte // bytes for the client not written yet
	// pend is body held back before the head is committed, at most
	// chunkingThreshold bytes.
	pend []byte
	vec  [3][]byte
	bufs net.Buffers

	status        int
	wroteHeader   bool // the final WriteHeader happened
	committed     bool // the head is in out (or sent)
	isHEAD        bool
	wantsClose    bool
	closeAfter    bool
	chunking      bool
	bodyOK        bool
	hasCLKey      bool
	hasCL         bool // a Content-Length frames the body
	hasTE         bool
	sniff         bool // no Content-Type: one is sniffed from the body
	addDate       bool
	addClose      bool
	trailers      bool
	contentLength int64 // -1: unknown
	written       int64
	declared      []string // trailer names declared at WriteHeader
	werr          error
}

// chunkingThreshold is how much body net/http's server holds back before
// it commits the head: an answer of unknown length that ends within it
// gets a Content-Length, a longer one is chunked.
const chunkingThreshold = 2048

// outSize is the output buffer's initial size; a body write that does not
// fit beside what is buffered goes out with it in one vectored write.
const outSize = 4 << 10

func (w *respWriter) reset(r *http.Request) {
	if w.h == nil {
		w.h = make(http.Header, 8)
	} else {
		clear(w.h)
	}
	if w.out == nil {
		w.out = make([]byte, 0, outSize)
	}
	*w = respWriter{c: w.c, req: r, h: w.h, out: w.out[:0], pend: w.pend[:0], declared: w.declared[:0],
		contentLength: -1, isHEAD: r.Method == http.MethodHead,
		wantsClose: r.Close || hasToken(headerGet(r.Header, "Connection"), "close")}
}

// release clears the writer when its connection ends, keeping buffers of
// the usual sizes; it reports false when they grew past them.
func (w *respWriter) release() bool {
	keep := cap(w.out) <= 2*outSize && cap(w.pend) <= chunkingThreshold+512
	out, pend, h, decl := w.out[:0], w.pend[:0], w.h, w.declared[:0]
	clear(h)
	clear(decl[:cap(decl)])
	*w = respWriter{c: w.c, out: out, pend: pend, h: h, declared: decl}
	return keep
}

func (w *respWriter) Header() http.Header { return w.h }

func (w *respWriter) SetReadDeadline(t time.Time) error  { return w.c.raw.SetReadDeadline(t) }
func (w *respWriter) SetWriteDeadline(t time.Time) error { return w.c.raw.SetWriteDeadline(t) }

func headerGet(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (w *respWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	h := w.h
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.out = appendStatusLine(w.out, code)
		for k, vv := range h {
			if k != "Content-Length" && k != "Transfer-Encoding" {
				w.out = appendFields(w.out, k, vv)
			}
		}
		w.out = append(w.out, crlf...)
		w.send()
		return
	}
	w.wroteHeader = true
	w.status = code
	_, w.hasCLKey = h["Content-Length"]
	if cl := headerGet(h, "Content-Length"); cl != "" {
		// An invalid one is left out of the head below.
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		}
	}
	te := headerGet(h, "Transfer-Encoding")
	w.hasTE = te != ""
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
		}
	}
	for _, v := range h["Trailer"] {
		w.trailers = true
		eachElement(v, w.declareTrailer)
	}
	w.bodyOK = bodyAllowedForStatus(code)
	keepAlives := !w.c.f.shutting.Load()
	w.closeAfter = w.wantsClose
	connField := headerGet(h, "Connection")
	if connField == "close" || !keepAlives {
		w.closeAfter = true
	}
	w.hasCL = w.contentLength != -1
	// What net/http leaves out of the head, decided from this header.
	exclCL, exclTE := false, false
	if w.hasCL && w.hasTE && te != "identity" {
		exclCL, w.hasCL = true, false
	}
	noBody := w.isHEAD || !w.bodyOK || code == http.StatusNoContent
	identity := w.hasTE && te == "identity"
	switch {
	case noBody, w.hasCL:
		exclTE = true
	case identity:
		w.closeAfter, exclTE = true, true
	case te == "chunked":
		exclTE = true
	}
	if w.hasCLKey && !w.hasCL && !noBody && !identity {
		exclCL = true // chunked: an invalid or overridden length goes
	}
	exclType := false
	if w.bodyOK {
		_, haveType := h["Content-Type"]
		w.sniff = !haveType && headerGet(h, "Content-Encoding") == "" && !w.hasTE
	} else {
		exclCL, exclTE = true, true
		exclType = code == http.StatusNotModified
	}
	_, hasDate := h["Date"]
	w.addDate = !hasDate
	exclConn := false
	if w.closeAfter && (!keepAlives || !hasToken(connField, "close")) && !protocolSwitch(code, h) {
		exclConn, w.addClose = true, true
	}
	w.out = appendStatusLine(w.out, code)
	for k, vv := range h {
		switch {
		case k == "Content-Length" && exclCL, k == "Transfer-Encoding" && exclTE,
			k == "Content-Type" && exclType, k == "Connection" && exclConn,
			strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		w.out = appendFields(w.out, k, vv)
	}
}

// declareTrailer notes a trailer the answer announced, as net/http does.
func (w *respWriter) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if httpguts.ValidTrailerHeader(k) {
		w.declared = append(w.declared, k)
	}
}

// commit ends the head in out, p being the first body bytes and done
// telling whether they are all of it.
func (w *respWriter) commit(p []byte, done bool) {
	w.committed = true
	if done && !w.trailers && !w.hasTE && w.bodyOK && !w.hasCLKey && (!w.isHEAD || len(p) > 0) {
		w.contentLength = int64(len(p))
		w.hasCL = true
		w.out = append(w.out, "Content-Length: "...)
		w.out = strconv.AppendInt(w.out, int64(len(p)), 10)
		w.out = append(w.out, crlf...)
	}
	noBody := w.isHEAD || !w.bodyOK || w.status == http.StatusNoContent
	w.chunking = !noBody && !w.hasCL && !(w.hasTE && headerGet(w.h, "Transfer-Encoding") == "identity")
	if w.sniff && len(p) > 0 {
		w.out = append(w.out, "Content-Type: "...)
		w.out = append(w.out, http.DetectContentType(p)...)
		w.out = append(w.out, crlf...)
	}
	if w.addClose {
		w.out = append(w.out, "Connection: close\r\n"...)
	}
	if w.chunking {
		w.out = append(w.out, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.addDate {
		w.out = append(w.out, "Date: "...)
		w.out = append(w.out, httpDate(time.Now())...)
		w.out = append(w.out, crlf...)
	}
	w.out = append(w.out, crlf...)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !w.bodyOK {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if !w.committed {
		if len(w.pend)+len(p) <= chunkingThreshold {
			w.pend = append(w.pend, p...)
			return len(p), nil
		}
		first := p
		if len(w.pend) > 0 {
			first = w.pend
			if len(first) < 512 {
				first = append(first, p[:min(len(p), 512-len(first))]...)
			}
		}
		w.commit(first, false)
		if len(w.pend) > 0 {
			n := len(w.pend)
			w.pend = w.pend[:0]
			w.body(w.pend[:n])
		}
	}
	w.body(p)
	if w.werr != nil {
		return 0, w.werr
	}
	return len(p), nil
}

// body queues or writes body bytes after the head.
func (w *respWriter) body(p []byte) {
	if w.isHEAD || len(p) == 0 {
		return
	}
	var head []byte
	if w.chunking {
		head = strconv.AppendInt(w.c.keyBuf[:0], int64(len(p)), 16)
		head = append(head, crlf...)
	}
	if len(w.out)+len(head)+len(p)+2 <= cap(w.out) {
		w.out = append(w.out, head...)
		w.out = append(w.out, p...)
		if w.chunking {
			w.out = append(w.out, crlf...)
		}
		return
	}
	w.out = append(w.out, head...)
	if w.chunking {
		w.send(p, crlf)
	} else {
		w.send(p)
	}
}

// send writes out, then the extra slices, in one system call.
func (w *respWriter) send(extra ...[]byte) {
	if w.werr != nil {
		w.out = w.out[:0]
		return
	}
	var err error
	if len(extra) == 0 {
		if len(w.out) == 0 {
			return
		}
		_, err = w.c.raw.Write(w.out)
	} else {
		w.vec[0] = w.out
		n := copy(w.vec[1:], extra)
		w.bufs = w.vec[:1+n]
		_, err = w.bufs.WriteTo(w.c.raw)
		w.vec = [3][]byte{}
	}
	w.out = w.out[:0]
	if err != nil {
		w.werr = err
		w.c.ctx.cancel() // as net/http: a failed write cancels the request
	}
}

// Flush sends the head, if not yet, and what is buffered.
func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.pend, false)
		n := len(w.pend)
		w.pend = w.pend[:0]
		w.body(w.pend[:n])
	}
	w.send()
}

// finish ends the answer after the handler returned and tells whether the
// connection may carry another request.
func (w *respWriter) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.pend, true)
		n := len(w.pend)
		w.pend = w.pend[:0]
		w.body(w.pend[:n])
	}
	if w.chunking {
		w.out = append(w.out, "0\r\n"...)
		w.appendTrailers()
		w.out = append(w.out, crlf...)
	}
	w.send()
	if cap(w.out) > 64<<10 {
		w.out = nil // an outsized head: not kept for the connection's life
	}
	switch {
	case w.closeAfter, w.werr != nil:
		return false
	case !w.isHEAD && w.contentLength != -1 && w.bodyOK && w.contentLength != w.written:
		return false // too short: the client would read the next answer as its rest
	}
	return true
}

// abort sends what was committed of an answer whose handler panicked.
func (w *respWriter) abort() {
	if w.committed {
		w.send()
	}
}

// appendTrailers adds the trailer fields: those set with http.TrailerPrefix
// and those announced in the Trailer field.
func (w *respWriter) appendTrailers() {
	for k, vv := range w.h {
		if kk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			w.out = appendFields(w.out, kk, vv)
		}
	}
	for _, k := range w.declared {
		w.out = appendFields(w.out, k, w.h[k])
	}
}

// appendFields appends one line per value, with line breaks in a value
// turned into spaces and the value trimmed, as http.Header.Write does.
func appendFields(b []byte, k string, vv []string) []byte {
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
		b = append(b, textproto.TrimString(v)...)
		b = append(b, crlf...)
	}
	return b
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	if text := http.StatusText(code); text != "" {
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = append(b, text...)
	} else {
		b = fmt.Appendf(b, "%03d status code %d", code, code)
	}
	return append(b, crlf...)
}

func bodyAllowedForStatus(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// protocolSwitch tells a 101 answer that names its new protocol.
func protocolSwitch(code int, h http.Header) bool {
	return code == http.StatusSwitchingProtocols && headerGet(h, "Upgrade") != "" &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// hasToken tells whether the comma-separated list v holds token, in any
// case, bounded by the start or end of v, a space, a tab or a comma.
func hasToken(v, token string) bool {
	for i := 0; i+len(token) <= len(v); i++ {
		if !strings.EqualFold(v[i:i+len(token)], token) {
			continue
		}
		before := i == 0 || tokenBoundary(v[i-1])
		after := i+len(token) == len(v) || tokenBoundary(v[i+len(token)])
		if before && after {
			return true
		}
	}
	return false
}

func tokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// eachElement calls fn with each non-empty element of a comma-separated
// field value, trimmed.
func eachElement(v string, fn func(string)) {
	for _, el := range strings.Split(v, ",") {
		if el = strings.Trim(el, " \t"); el != "" {
			fn(el)
		}
	}
}

type dateCache struct {
	sec int64
	b   []byte
}

var dateNow atomic.Pointer[dateCache]

// httpDate is the Date field's value for now, formatted once per second;
// the slice is shared and must not be modified.
func httpDate(now time.Time) []byte {
	s := now.Unix()
	if c := dateNow.Load(); c != nil && c.sec == s {
		return c.b
	}
	c := &dateCache{sec: s, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateNow.Store(c)
	return c.b
}
