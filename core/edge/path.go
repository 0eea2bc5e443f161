package edge

import (
	"net/url"
	"strings"
)

// route is the result of reading a request path: which app it names and the
// escaped path the app's workload should see.
type route struct {
	app     string // unescaped first segment; "" when the path names no app
	cleaned string // escaped path with dot segments removed
	rest    string // escaped remainder after the app segment, always starting with "/"
}

// parseRoute removes dot segments from the escaped request path (RFC 3986
// section 5.2.4) and splits off its first segment, the app. Routing on the
// cleaned path means "/a/../b/x" is a request for app b, never a request to
// app a that smuggles ".." to its workload.
//
// A segment spelled with percent-encoded dots ("%2e%2e") is the same
// segment as ".." (RFC 3986 section 6.2.2.2) and is removed too, since
// workloads decode paths before they clean them. Other percent-encoded
// bytes, %2F among them, are data and left byte for byte. The path is
// refused (ok false) when it is not valid percent-encoding, when the app
// name would contain a "/", or when a segment holding an encoded slash
// would decode into dot segments ("a%2F..%2F..%2Fx"): a workload that
// decodes %2F before cleaning would otherwise climb out of the app.
func parseRoute(escaped string) (route, bool) {
	if escaped == "" || escaped[0] != '/' {
		escaped = "/" + escaped
	}
	cleaned := escaped
	if strings.IndexByte(escaped, '.') >= 0 || strings.IndexByte(escaped, '%') >= 0 {
		var ok bool
		if cleaned, ok = removeDotSegments(escaped); !ok {
			return route{}, false
		}
	}
	seg := cleaned[1:]
	rest := "/"
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		rest = seg[i:]
		seg = seg[:i]
	}
	app := seg
	if strings.IndexByte(seg, '%') >= 0 {
		u, err := url.PathUnescape(seg)
		if err != nil || strings.IndexByte(u, '/') >= 0 {
			return route{}, false
		}
		app = u
	}
	return route{app: app, cleaned: cleaned, rest: rest}, true
}

// dotSegment tells whether an escaped segment means "." (1) or ".." (2),
// spelled with literal or percent-encoded dots; 0 otherwise.
func dotSegment(s string) int {
	n := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case len(s)-i >= 3 && s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E'):
			i += 3
		default:
			return 0
		}
		if n++; n > 2 {
			return 0
		}
	}
	return n
}

// hidesDots tells whether an escaped segment holding an encoded slash
// decodes to a path with a dot segment. ok is false for bad escapes.
func hidesDots(s string) (hides, ok bool) {
	if strings.IndexByte(s, '%') < 0 {
		return false, true
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return false, false
	}
	if strings.IndexByte(u, '/') < 0 {
		return false, true
	}
	for _, piece := range strings.Split(u, "/") {
		if piece == "." || piece == ".." {
			return true, true
		}
	}
	return false, true
}

// removeDotSegments applies RFC 3986 remove_dot_segments to an absolute,
// escaped path. It allocates only when the path holds a dot segment.
func removeDotSegments(p string) (string, bool) {
	segs := strings.Split(p, "/")
	dots := false
	for _, s := range segs {
		if dotSegment(s) != 0 {
			dots = true
		}
		if hides, ok := hidesDots(s); !ok || hides {
			return "", false
		}
	}
	if !dots {
		return p, true
	}
	// segs[0] is "" for an absolute path.
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch dotSegment(s) {
		case 1:
			trailing = last
		case 2:
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	res := strings.Join(out, "/")
	if trailing && !strings.HasSuffix(res, "/") {
		res += "/"
	}
	if res == "" {
		res = "/"
	}
	return res, true
}
