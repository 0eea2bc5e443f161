package mesh

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The caller of a unix-socket request is named from the kernel's peer
// credentials; a TCP caller is "token" on the token listener.
func TestCallerFromPeerCredentials(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := func(token bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, caller(r.Context(), token))
		})
	}
	for _, s := range []struct {
		ln    net.Listener
		token bool
	}{{ln, false}, {tcp, true}} {
		srv := &http.Server{Handler: h(s.token), ConnContext: connCaller}
		go func() { _ = srv.Serve(s.ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	unixClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	wantUnix := fmt.Sprintf("(uid %d)", os.Getuid())
	if runtime.GOOS != "linux" {
		wantUnix = "unknown"
	}
	if got := get(unixClient, "http://mesh/"); !strings.Contains(got, wantUnix) {
		t.Errorf("unix caller %q, want it to contain %q", got, wantUnix)
	}
	if got := get(http.DefaultClient, "http://"+tcp.Addr().String()+"/"); got != "token" {
		t.Errorf("tcp caller %q, want token", got)
	}
}
