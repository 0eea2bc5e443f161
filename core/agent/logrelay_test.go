package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The relay process copies both streams into rotated files within the
// policy's bounds and exits once the writers are gone.
func TestLogRelayProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := &Agent{opts: Options{LogRelayCommand: []string{exe, LogRelayArg}}}
	pol := LogPolicy{MaxSize: 4096, MaxFiles: 2}
	r, err := a.startRelay(dir, pol)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 99) + "\n"
	batchLen := 0
	for k := range 4 { // 4 × 3,000 bytes: rotated more than once at 4 KiB
		batch := strings.Repeat(line, 29) + fmt.Sprintf("batch %d %s\n", k, strings.Repeat("z", 89))
		batchLen = len(batch)
		if _, err := r.stdout.WriteString(batch); err != nil {
			t.Fatal(err)
		}
		// One batch at a time, so that each reaches the relay in reads no
		// larger than the cap (a single larger write goes whole into a file).
		waitFor(t, 10*time.Second, "batch copied", func() bool {
			last := fileTail(filepath.Join(dir, "stdout.log"), 1)
			return len(last) == 1 && strings.HasPrefix(last[0], fmt.Sprintf("batch %d ", k))
		})
	}
	if _, err := r.stderr.WriteString("first\nlast words"); err != nil {
		t.Fatal(err)
	}
	r.closeWriters()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		t.Fatal("relay did not exit when its writers were gone")
	}
	if !r.cmd.ProcessState.Success() {
		t.Fatalf("relay exited with %v", r.cmd.ProcessState)
	}
	var total int64
	for _, name := range []string{"stdout.log", "stdout.log.1"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > pol.MaxSize {
			t.Errorf("%s is %d bytes, over the cap of %d", name, info.Size(), pol.MaxSize)
		}
		total += info.Size()
	}
	if _, err := os.Stat(filepath.Join(dir, "stdout.log.2")); !os.IsNotExist(err) {
		t.Errorf("more files kept than max_files: %v", err)
	}
	if total != int64(2*batchLen) {
		t.Errorf("kept %d bytes, want the two newest batches (%d bytes)", total, 2*batchLen)
	}
	if got := fileTail(filepath.Join(dir, "stderr.log"), 5); !reflect.DeepEqual(got, []string{"first", "last words"}) {
		t.Errorf("stderr tail %q", got)
	}
}

func TestRunLogRelayArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b", "c"}, {"a", "b", "big", "3"}, {"a", "b", "10", "many"}} {
		if err := RunLogRelay(args); err == nil {
			t.Errorf("RunLogRelay(%q) accepted", args)
		}
	}
}

func TestFileTail(t *testing.T) {
	long := strings.Repeat("y", tailBytes)
	tests := []struct {
		name, content string
		n             int
		want          []string
	}{
		{"empty", "", 3, nil},
		{"fewer lines than asked", "a\nb\n", 3, []string{"a", "b"}},
		{"last n", "a\nb\nc\nd\n", 2, []string{"c", "d"}},
		{"unfinished line", "a\nb", 5, []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", 5, []string{"a", "b"}},
		{"cut first line dropped", long + "\nend\n", 5, []string{"end"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "stderr.log")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got := fileTail(p, tc.n)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("fileTail = %q, want %q", got, tc.want)
			}
		})
	}
	if got := fileTail(filepath.Join(t.TempDir(), "missing"), 3); got != nil {
		t.Fatalf("missing file: %q", got)
	}
}
