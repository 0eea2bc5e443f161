package edge

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzParseRoute checks the invariants of route parsing on arbitrary
// request paths: no panic, app names without '/', no dot segment left (in
// any spelling) and no way for a workload that decodes and cleans the
// forwarded path to land outside the app's prefix, paths without dot
// segments forwarded byte for byte, and parsing its own output changes
// nothing. Run it longer with
//
//	go test -run '^$' -fuzz FuzzParseRoute -fuzztime 60s ./core/edge
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/", "", "/billing", "/billing/", "/billing/a/b?x", "/billing/a%2Fb", "/billing/../admin/x",
		"/billing/./a/.", "/../../etc", "/bil%6Cing/x", "/a%2Fb/x", "/billing/%2e%2E/x", "/billing/a%2F..%2Fb",
		"//x", "/billing//x", "/billing//a|b%2Fc", "//%2F|", "/billing/a|b{c}", "/bad%zz", "/b/%2E./..%2e/.%2E%2e/%2e", "billing/../..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, ok := parseRoute(in)
		if !ok {
			return
		}
		if strings.Contains(r.app, "/") {
			t.Fatalf("app %q holds a slash", r.app)
		}
		if !strings.HasPrefix(r.cleaned, "/") || !strings.HasPrefix(r.rest, "/") {
			t.Fatalf("cleaned %q / rest %q not absolute", r.cleaned, r.rest)
		}
		seg, after, found := strings.Cut(r.cleaned[1:], "/")
		if want := "/" + after; found && r.rest != want || !found && r.rest != "/" {
			t.Fatalf("rest %q does not follow app segment %q of %q", r.rest, seg, r.cleaned)
		}
		app, err := url.PathUnescape(seg)
		if err != nil || app != r.app {
			t.Fatalf("app %q is not the unescaped first segment %q (%v)", r.app, seg, err)
		}
		for _, s := range strings.Split(r.cleaned, "/") {
			if dotSegment(s) != 0 {
				t.Fatalf("dot segment %q left in %q", s, r.cleaned)
			}
		}
		// A workload decodes, then cleans: it must stay inside /app.
		dec, err := url.PathUnescape(r.cleaned)
		if err != nil {
			t.Fatalf("cleaned %q is not valid escaping: %v", r.cleaned, err)
		}
		prefix := "/" + r.app
		if c := path.Clean(dec); r.app != "" && c != prefix && !strings.HasPrefix(c, prefix+"/") {
			t.Fatalf("%q decodes and cleans to %q, outside %q", r.cleaned, c, prefix)
		}
		// Without dot segments, the path passes byte for byte.
		abs := in
		if !strings.HasPrefix(abs, "/") {
			abs = "/" + abs
		}
		dots := false
		for _, s := range strings.Split(abs, "/") {
			dots = dots || dotSegment(s) != 0
		}
		if !dots && r.cleaned != abs {
			t.Fatalf("%q without dot segments became %q", in, r.cleaned)
		}
		if again, ok := parseRoute(r.cleaned); !ok || again != r {
			t.Fatalf("parsing %q again gave %+v %v, want %+v", r.cleaned, again, ok, r)
		}
		// The request line sent upstream carries the forwarded path.
		req := &http.Request{Method: "GET", URL: &url.URL{}, Header: http.Header{}, RemoteAddr: "127.0.0.1:1", Host: "edge"}
		for _, p := range []string{r.rest, r.cleaned} {
			out, _, _ := outRequest(req, p, []string{"t"}, false)
			got := out.URL.RequestURI()
			if !strings.HasPrefix(p, "//") && got != p {
				t.Fatalf("request target %q, want %q byte for byte", got, p)
			}
			// Segment by segment, so an encoded slash stays one.
			gs, ps := strings.Split(got, "/"), strings.Split(p, "/")
			if len(gs) != len(ps) {
				t.Fatalf("request target %q does not mean %q", got, p)
			}
			for i := range gs {
				gu, err1 := url.PathUnescape(gs[i])
				pu, err2 := url.PathUnescape(ps[i])
				if err1 != nil || err2 != nil || gu != pu {
					t.Fatalf("request target %q does not mean %q", got, p)
				}
			}
		}
	})
}
