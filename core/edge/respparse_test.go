package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// checkPlain parses raw both ways: whatever parsePlain accepts,
// http.ReadResponse must read the same way (status, header, length,
// the bytes the header takes).
func checkPlain(t *testing.T, raw []byte, method string) (accepted bool) {
	t.Helper()
	br := bufio.NewReaderSize(bytes.NewReader(raw), 16<<10)
	hdr, err := awaitHeader(br)
	if err != nil || hdr == nil {
		return false
	}
	p, ok := parsePlain(hdr, method, nil)
	if !ok || len(raw) < p.size || string(raw[p.size-2:p.size]) != "\r\n" {
		return false
	}
	ref, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("parsePlain accepted %q, http.ReadResponse: %v", raw, err)
	}
	wantLen := ref.ContentLength
	if got := fmt.Sprint(p.status, p.header, p.length); got != fmt.Sprint(ref.StatusCode, ref.Header, wantLen) || ref.Close {
		t.Fatalf("%q:\nparsePlain       %s\nhttp.ReadResponse %d %v %d (close %v)", raw, got, ref.StatusCode, ref.Header, wantLen, ref.Close)
	}
	if ref.Status != p.reason {
		t.Fatalf("%q: status %q, want %q", raw, p.reason, ref.Status)
	}
	// The body starts where parsePlain says the header ends.
	if method != http.MethodHead && p.status != 204 && p.status != 304 {
		b, _ := io.ReadAll(ref.Body)
		if rest := raw[p.size:]; !bytes.HasPrefix(rest, b) {
			t.Fatalf("%q: body %q does not start at byte %d", raw, b, p.size)
		}
	}
	return true
}

func TestParsePlain(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		method string
		plain  bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", "GET", true},
		{"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", true},
		{"HTTP/1.1 404 Not Found\r\ncontent-length:  3 \r\nx-multi: a\r\nX-Multi: b\r\n\r\nnop", "GET", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", "HEAD", true},
		{"HTTP/1.1 200 OK\r\n\r\n", "HEAD", true},
		{"HTTP/1.1 204 No Content\r\n\r\n", "GET", true},
		{"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 99\r\n\r\n", "GET", true},
		{"HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 007\r\n\r\n1234567", "GET", true},
		{"HTTP/1.1 200 OK\r\nX_Under.Score: v\r\nContent-Length: 1\r\n\r\nx", "GET", true},
		{"HTTP/1.1 200 OK\r\nX-Utf8: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nx", "GET", true},
		// Left to http.ReadResponse.
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\n\r\nuntil close", "GET", false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok", "GET", false},
		{"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok", "GET", false},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", "GET", false},
		{"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", "GET", false},
		{"HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n", "GET", false},
	} {
		if got := checkPlain(t, []byte(tc.raw), tc.method); got != tc.plain {
			t.Errorf("%q: plain %v, want %v", tc.raw, got, tc.plain)
		}
	}
}

// FuzzParsePlain: any header the plain parser accepts reads the same
// through http.ReadResponse.
func FuzzParsePlain(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false)
	f.Add("HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", false)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
	f.Add("HTTP/1.1 500 x\r\nx-a:\t b \t\r\nContent-Length: 1\r\n\r\nx", false)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		if !strings.HasPrefix(raw, "HTTP/1.1 ") {
			raw = "HTTP/1.1 " + raw
		}
		checkPlain(t, []byte(raw), method)
	})
}
