package edge

import (
	"bufio"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// The request head the edge sends on its own pool is written straight from
// the client's request into the connection's buffer: no outgoing
// http.Request, header map or URL is built. It carries what
// http.Request.Write would for the same request (checked by the
// differential test against http.Transport): the request line with the
// client's target bytes, Host naming the endpoint, the end-to-end fields
// (hop-by-hop ones and those the Connection field names are dropped), the
// forwarding fields the edge sets, "Te: trailers" when the client accepts
// trailers, and Content-Length or chunked framing for the body.

// outReq is a client request as it will be forwarded, minus the endpoint.
type outReq struct {
	r       *http.Request
	method  string
	target  string // origin-form request target, escaped bytes as the client sent them
	st      []string
	trusted bool
	named   []string // fields named in the client's Connection field, canonical
	te      bool     // the client accepts trailers
	body    *bodyTracker
	expect  bool // Expect: 100-continue, with a body
	// bodyLength is the body's Content-Length, -1 when sent chunked; only
	// meaningful with a body.
	bodyLength int64
}

// newOutReq describes r forwarded with path as its path.
func newOutReq(r *http.Request, path string, st []string, trusted bool, body *bodyTracker) outReq {
	o := outReq{r: r, method: r.Method, st: st, trusted: trusted, body: body, bodyLength: r.ContentLength}
	target := path
	if strings.HasPrefix(path, "//") {
		target = escapeLoose(path) // as url.URL.RequestURI spells such a path
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		target += "?" + r.URL.RawQuery
	}
	o.target = target
	if _, ok := r.Header["Connection"]; ok {
		connectionTokens(r.Header, func(t string) {
			if len(o.named) == 0 {
				// One common option, as most clients send: a shared
				// one-element list, which an append would copy.
				for i, c := range commonTokens {
					if t == c {
						o.named = namedCommon[i : i+1 : i+1]
						return
					}
				}
			}
			o.named = append(o.named, t)
		})
	}
	for _, v := range r.Header["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			o.te = true
			break
		}
	}
	if body != nil {
		for _, v := range r.Header["Expect"] {
			if strings.EqualFold(strings.TrimSpace(v), "100-continue") {
				o.expect = true
			}
		}
	}
	return o
}

// namedCommon backs the named list of a request whose Connection field
// names one common option; never written to.
var namedCommon = commonTokens

// skipField tells whether the client's field k is not forwarded as it is.
func (o *outReq) skipField(k string) bool {
	if hopByHop(k) || k == HeaderEdge || forwardingHeader(k) {
		return true
	}
	switch k {
	case "Host", "Content-Length", "User-Agent":
		return true // written by writeHead itself
	}
	for _, n := range o.named {
		if n == k {
			return true
		}
	}
	return false
}

// writeHead writes the request line and header for endpoint host to bw.
func (o *outReq) writeHead(bw *bufio.Writer, host string) {
	bw.WriteString(o.method)
	bw.WriteByte(' ')
	if o.target == "" {
		bw.WriteByte('/')
	} else {
		bw.WriteString(o.target)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	h := o.r.Header
	for k, vv := range h {
		if o.skipField(k) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	// An empty User-Agent is left out, as http.Request.Write does.
	if ua := h["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		writeField(bw, "User-Agent", ua[0])
	}
	if o.te {
		bw.WriteString("Te: trailers\r\n")
	}
	forwardedFields(o.r, o.trusted, func(k, v string) { writeField(bw, k, v) })
	writeField(bw, HeaderEdge, o.st[0])
	switch {
	case o.body != nil && o.bodyLength >= 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), o.bodyLength, 10))
		bw.WriteString("\r\n")
	case o.body != nil:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(o.r.Trailer) > 0 {
			keys := make([]string, 0, len(o.r.Trailer))
			for k := range o.r.Trailer {
				keys = append(keys, k)
			}
			writeField(bw, "Trailer", strings.Join(keys, ","))
		}
	case o.method == http.MethodPost || o.method == http.MethodPut || o.method == http.MethodPatch:
		// Methods that define a body say it is empty.
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
}

// writeField writes one header line. A value holding a line break (only a
// handler mounted behind a lenient server could get one) has it replaced
// by a space, as http.Header.Write does, so no field can be smuggled in.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(textproto.TrimString(v))
	bw.WriteString("\r\n")
}
