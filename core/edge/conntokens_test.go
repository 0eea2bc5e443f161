package edge

import (
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// connectionTokens names the fields textproto would, token by token.
func TestConnectionTokens(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []string
	}{
		{"close", []string{"close"}},
		{"cases", []string{"CLOSE", "Keep-alive", "uPgRaDe"}},
		{"list", []string{"keep-alive, Upgrade,x-hop"}},
		{"spaces and empties", []string{" , close ,, \tx-a\t,", ""}},
		{"several fields", []string{"close", "X-One, x-two"}},
		{"other tokens", []string{"closed, keep-alivex, te, trailer"}},
		// strings.EqualFold would take the Kelvin sign for a k; a
		// header name never matches it.
		{"kelvin sign", []string{"\u212Aeep-alive"}},
		{"not a token", []string{"x y, a:b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, v := range tc.vals {
				for _, tok := range strings.Split(v, ",") {
					if tok = strings.TrimSpace(tok); tok != "" {
						want = append(want, textproto.CanonicalMIMEHeaderKey(tok))
					}
				}
			}
			var got []string
			connectionTokens(http.Header{"Connection": tc.vals}, func(s string) { got = append(got, s) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("tokens of %q = %q, want %q", tc.vals, got, want)
			}
		})
	}
}

// The common options cost no allocation, in a request's named list
// either: a client sending "Connection: close" on every request pays
// nothing for it.
func TestConnectionTokensCommonAllocateNothing(t *testing.T) {
	for _, v := range []string{"close", "Keep-Alive", "keep-alive, upgrade", "CLOSE"} {
		h := http.Header{"Connection": {v}}
		n := 0
		if a := testing.AllocsPerRun(100, func() {
			connectionTokens(h, func(string) { n++ })
		}); a != 0 {
			t.Errorf("connectionTokens(%q): %v allocations, want 0", v, a)
		}
	}
	r, err := http.NewRequest(http.MethodGet, "http://edge/app/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := testing.AllocsPerRun(100, func() { _ = newOutReq(r, "/x", nil, false, nil) })
	r.Header.Set("Connection", "close")
	var o outReq
	with := testing.AllocsPerRun(100, func() { o = newOutReq(r, "/x", nil, false, nil) })
	if with != base {
		t.Errorf("newOutReq with Connection: close: %v allocations, %v without", with, base)
	}
	if !reflect.DeepEqual(o.named, []string{"Close"}) {
		t.Errorf("named = %q, want [Close]", o.named)
	}
	if !o.skipField("Close") {
		t.Error("a Close field named by Connection is forwarded")
	}
}
