package edge

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// upgrade relays a 101 answer and then bytes both ways until either side
// closes.
func (e *Edge) upgrade(w http.ResponseWriter, r *http.Request, resp *http.Response, st []string) int {
	back, ok := resp.Body.(io.ReadWriteCloser)
	want, got := upgradeType(r.Header), upgradeType(resp.Header)
	if !ok || want == "" || !strings.EqualFold(want, got) {
		resp.Body.Close()
		edgeError(w, st, http.StatusBadGateway, "endpoint switched to an unexpected protocol")
		return http.StatusBadGateway
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		back.Close()
		edgeError(w, st, http.StatusInternalServerError, "connection cannot be upgraded")
		return http.StatusInternalServerError
	}
	e.mu.Lock()
	e.upgraded[conn] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.upgraded, conn)
		e.mu.Unlock()
		conn.Close()
		back.Close()
	}()
	h := make(http.Header, len(resp.Header)+1)
	copyResponseHeader(h, resp.Header)
	h["Connection"] = upgradeConn
	h["Upgrade"] = []string{got}
	h[HeaderEdge] = st
	fmt.Fprintf(brw, "HTTP/1.1 101 %s\r\n", http.StatusText(http.StatusSwitchingProtocols))
	if err := h.Write(brw); err != nil {
		return http.StatusSwitchingProtocols
	}
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return http.StatusSwitchingProtocols
	}
	// The server's deadlines were for the request; the tunnel has only its
	// idle limit.
	conn.SetDeadline(time.Time{})
	t := newIdleTunnel(e.opts.StreamIdleTimeout, func() { conn.Close(); back.Close() })
	defer t.stop()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(t.writer(back), brw.Reader) // drains what the server buffered, then the conn
		done <- struct{}{}
	}()
	go func() {
		io.Copy(t.writer(conn), back)
		done <- struct{}{}
	}()
	<-done
	return http.StatusSwitchingProtocols
}

// outRequest builds an upgrade request to forward through http.Transport,
// without an endpoint yet. base is
// its URL, whose Host the caller sets. trusted tells whether r came from a
// trusted proxy, whose forwarding headers are kept.
func outRequest(r *http.Request, path string, st []string, trusted bool) (out *http.Request, base *url.URL, upgrade bool) {
	h := make(http.Header, len(r.Header)+5)
	for k, vv := range r.Header {
		if hopByHop(k) {
			continue
		}
		if k == HeaderEdge || forwardingHeader(k) {
			continue
		}
		h[k] = vv
	}
	if _, ok := r.Header["Connection"]; ok {
		connectionTokens(r.Header, func(t string) { delete(h, t) })
		if up := upgradeType(r.Header); up != "" {
			h["Connection"] = upgradeConn
			h["Upgrade"] = []string{up}
			upgrade = true
		}
	}
	for _, v := range r.Header["Te"] {
		if strings.Contains(strings.ToLower(v), "trailers") {
			h["Te"] = []string{"trailers"}
			break
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = emptyValue // keeps the transport from adding its own
	}
	setForwarded(h, r, trusted)
	h[HeaderEdge] = st

	u := &url.URL{Scheme: "http", RawQuery: r.URL.RawQuery, ForceQuery: r.URL.ForceQuery}
	if strings.HasPrefix(path, "//") {
		// An opaque "//x" would read as an authority: spell it out as a
		// path. url.URL drops a RawPath holding bytes it would escape and
		// re-escapes the decoded path, turning %2F into '/'; escaping
		// those bytes first keeps every %XX as it is.
		raw := escapeLoose(path)
		if p, err := url.PathUnescape(raw); err == nil {
			u.Path, u.RawPath = p, raw
		} else {
			u.Path = path
		}
	} else {
		// Opaque carries the escaped path byte for byte (%2F stays %2F).
		u.Opaque = path
	}
	out = &http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
	}
	return out.WithContext(r.Context()), u, upgrade
}
