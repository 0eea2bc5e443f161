package edge

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		soft uint64
		want int
	}{
		{0, 1},
		{256, 1},
		{1024, (1024 - 256) / 3},
		{20000, (20000 - 2500) / 3},
		{1 << 20, (1<<20 - 1<<17) / 3},
	} {
		if got := ConnectionCap(tc.soft); got != tc.want {
			t.Errorf("ConnectionCap(%d) = %d, want %d", tc.soft, got, tc.want)
		}
	}
}

// The listener stops accepting at its cap and accepts again as soon as a
// connection closes.
func TestCapListener(t *testing.T) {
	l := newCapListener(listenLoopback(t), 2, hclog.NewNullLogger())
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	defer second.Close()
	if n := l.open.Load(); n != 2 {
		t.Fatalf("open = %d, want 2", n)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("accepted a third connection over a cap of two")
	default:
	}
	first.Close()
	first.Close() // a second close gives nothing back
	select {
	case third := <-accepted:
		defer third.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot did not let the waiting connection in")
	}
	if n := l.open.Load(); n != 2 {
		t.Fatalf("open = %d after one close and one accept, want 2", n)
	}
	l.Close()
	if _, ok := <-accepted; ok {
		t.Fatal("Accept after Close")
	}
}

// Forwarding headers are kept from trusted proxies only; from anyone else
// they are replaced by what the edge saw.
func TestForwardingHeadersTrust(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	spoof := http.Header{
		"X-Forwarded-For":   {"192.0.2.1"},
		"X-Forwarded-Host":  {"spoofed.example"},
		"X-Forwarded-Proto": {"https"},
		"X-Real-Ip":         {"192.0.2.1"},
		"Forwarded":         {"for=192.0.2.1"},
	}
	cases := []struct {
		name, remote string
		header       http.Header
		want         map[string]string // "" means absent
	}{
		{"untrusted peer, spoofed headers", "203.0.113.7:4000", spoof, map[string]string{
			"X-Forwarded-For": "203.0.113.7", "X-Real-Ip": "203.0.113.7", "X-Forwarded-Host": "app.example",
			"X-Forwarded-Proto": "http", "Forwarded": "for=203.0.113.7;proto=http",
		}},
		{"untrusted peer, no forwarding headers", "203.0.113.7:4000", http.Header{}, map[string]string{
			"X-Forwarded-For": "203.0.113.7", "X-Real-Ip": "", "Forwarded": "",
		}},
		{"trusted proxy", "10.1.2.3:4000", spoof, map[string]string{
			"X-Forwarded-For": "192.0.2.1, 10.1.2.3", "X-Real-Ip": "192.0.2.1", "X-Forwarded-Host": "spoofed.example",
			"X-Forwarded-Proto": "https", "Forwarded": "for=192.0.2.1",
		}},
		{"trusted proxy sending none", "[::1]:4000", http.Header{}, map[string]string{
			"X-Forwarded-For": "::1", "X-Real-Ip": "", "X-Forwarded-Host": "app.example",
			"X-Forwarded-Proto": "http", "Forwarded": "",
		}},
		{"IPv4-mapped peer in a trusted v4 prefix", "[::ffff:10.0.0.1]:4000", spoof, map[string]string{
			"X-Forwarded-For": "192.0.2.1, ::ffff:10.0.0.1",
		}},
		{"untrusted v6 peer", "[2001:db8::1]:4000", spoof, map[string]string{
			"X-Forwarded-For": "2001:db8::1", "Forwarded": `for="[2001:db8::1]";proto=http`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: "GET", Host: "app.example", RemoteAddr: tc.remote, Header: tc.header.Clone(), RequestURI: "/a/x"}
			r.URL = &url.URL{Path: "/a/x"}
			out, _, _ := outRequest(r, "/x", []string{"t"}, trustedPeer(trusted, r.RemoteAddr))
			for k, v := range tc.want {
				if got := strings.Join(out.Header[k], ", "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	if trustedPeer(nil, "10.0.0.1:1") || trustedPeer(trusted, "not an address") {
		t.Error("trustedPeer trusted a peer it should not")
	}
}
