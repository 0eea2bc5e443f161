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
// app a that smuggles ".." to its workload. Percent-encoded bytes (%2F, %2E)
// are left as they are: they are data, not path structure.
func parseRoute(escaped string) (route, bool) {
	cleaned := removeDotSegments(escaped)
	if cleaned == "" || cleaned[0] != '/' {
		cleaned = "/" + cleaned
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
		if err != nil {
			return route{}, false
		}
		app = u
	}
	return route{app: app, cleaned: cleaned, rest: rest}, true
}

// removeDotSegments applies RFC 3986 remove_dot_segments to an absolute,
// escaped path. It allocates only when the path holds a "." or ".." segment.
func removeDotSegments(p string) string {
	if !hasDotSegment(p) {
		return p
	}
	segs := strings.Split(p, "/")
	// segs[0] is "" for an absolute path.
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			trailing = last
		case "..":
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
	return res
}

func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || (i > 0 && p[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}
