package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBlob(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serveBlob))
	defer srv.Close()
	for _, tc := range []struct {
		query  string
		status int
		size   int
	}{
		{"", 200, 16 << 10},
		{"?size=0", 200, 0},
		{"?size=100", 200, 100},
		{"?size=1048576", 200, 1 << 20},
		{"?size=1048577", 400, -1},
		{"?size=-1", 400, -1},
		{"?size=x", 400, -1},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/blob" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.size < 0 {
				return
			}
			if len(body) != tc.size || resp.ContentLength != int64(tc.size) {
				t.Fatalf("body %d bytes, Content-Length %d, want %d", len(body), resp.ContentLength, tc.size)
			}
			for i, c := range body {
				if c != 'a'+byte(i%26) {
					t.Fatalf("byte %d is %q", i, c)
				}
			}
		})
	}
}
