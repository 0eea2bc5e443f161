package edge

import (
	"fmt"
	"io"
	"net/http"
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
