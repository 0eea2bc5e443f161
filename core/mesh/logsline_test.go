package mesh

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogFollowBoundsLongLines: a workload writing without newlines (binary
// output, a runaway line) does not make a follower buffer its output
// without limit: a line is passed on in pieces of at most logLineMax bytes.
func TestLogFollowBoundsLongLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{
		{"no newline at all", strings.Repeat("x", 5*logLineMax+17)},
		{"a long line then short ones", strings.Repeat("y", 3*logLineMax) + "\nshort\nlast\n"},
		{"short lines", "a\nbb\nccc\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stderr.log")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			lf := &logFile{prefix: "n1 i stderr| ", path: path}
			var out bytes.Buffer
			lf.open(&out, 0, true, true)
			defer lf.f.Close()
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Written in pieces, as a workload would, with a follow between.
			for i := 0; i < len(tc.data); i += 4096 {
				if _, err := f.WriteString(tc.data[i:min(i+4096, len(tc.data))]); err != nil {
					t.Fatal(err)
				}
				lf.follow(&out)
				if len(lf.buf) > logLineMax {
					t.Fatalf("follower buffers %d bytes of one line, more than %d", len(lf.buf), logLineMax)
				}
			}
			f.Close()
			var got strings.Builder
			for _, line := range strings.SplitAfter(out.String(), "\n") {
				if line == "" {
					continue
				}
				body, ok := strings.CutPrefix(line, lf.prefix)
				if !ok || len(body) > logLineMax+1 {
					t.Fatalf("line of %d bytes (prefix %v), want at most %d", len(body), ok, logLineMax)
				}
				got.WriteString(strings.TrimSuffix(body, "\n"))
			}
			want := strings.ReplaceAll(tc.data, "\n", "")
			// What a line still being written holds back is all that may be missing.
			if !strings.HasPrefix(want, got.String()) || len(want)-got.Len() > logLineMax {
				t.Fatalf("passed on %d of %d bytes", got.Len(), len(want))
			}
		})
	}
}
