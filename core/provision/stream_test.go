package provision

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/packed"

	"github.com/mycelium-mesh/mesh/proto/sporev1"
)

var update = flag.Bool("update", false, "rewrite testdata/fixtures/go-encoded.bin from Encode")

func readAll(t *testing.T, r *Reader) (ids []string, err error) {
	t.Helper()
	for {
		msg, err := r.Next()
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		c, derr := Decode(msg)
		if derr != nil {
			ids = append(ids, "invalid:"+derr.Error())
			continue
		}
		ids = append(ids, c.Site.ID)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReaderStream(t *testing.T) {
	ids, err := readAll(t, NewReader(bytes.NewReader(fixture(t, "stream.bin")), Limits{}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "blog,docs,shop" {
		t.Fatalf("sites %v", ids)
	}
}

func TestReaderTruncatedIsFraming(t *testing.T) {
	ids, err := readAll(t, NewReader(bytes.NewReader(fixture(t, "truncated.bin")), Limits{}))
	if !errors.Is(err, ErrFraming) {
		t.Fatalf("error %v, want ErrFraming", err)
	}
	if strings.Join(ids, ",") != "blog,docs" {
		t.Fatalf("complete messages before the cut: %v", ids)
	}
}

func TestReaderGarbage(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"half a header", []byte{0x01, 0x02, 0x03}},
		// A segment count of 2^32 (0xffffffff + 1) cannot be a real message.
		{"too many segments", packedWords(t, []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0})},
		// One segment of one word announced, nothing follows.
		{"body missing", packedWords(t, []byte{0, 0, 0, 0, 1, 0, 0, 0})},
		// A segment whose root pointer points far outside it.
		{"bad root pointer", packedWords(t, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0xfc, 0xff, 0xff, 0x7f, 0, 0, 1, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(tt.in), Limits{})
			msg, err := r.Next()
			if err == nil {
				// The frame was sound: the refusal must come from Decode.
				if _, err = Decode(msg); !errors.Is(err, ErrMalformed) {
					t.Fatalf("decode: %v, want ErrMalformed", err)
				}
				return
			}
			if !errors.Is(err, ErrFraming) {
				t.Fatalf("error %v, want ErrFraming", err)
			}
		})
	}
}

// packedWords packs hand-made words with the library's packer.
func packedWords(t *testing.T, raw []byte) []byte {
	t.Helper()
	return packed.Pack(nil, raw)
}

func TestReaderOversizedSkipsAndGoesOn(t *testing.T) {
	var stream bytes.Buffer
	w := NewWriter(&stream)
	big := build(t, func(r sporev1.SporeConfig) {
		s, _ := r.Site()
		_ = s.SetId("big")
		_ = s.SetTitle(strings.Repeat("x", 8000))
	})
	for _, m := range []*capnp.Message{build(t, nil), big, build(t, nil)} {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&stream, Limits{MaxMessageSize: 4096})
	var got []string
	for {
		msg, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, ErrTooLarge) {
			got = append(got, "too large")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Site.ID)
	}
	if strings.Join(got, ",") != "ok,too large,ok" {
		t.Fatalf("got %v", got)
	}
}

// TestEncodeGolden pins what Encode writes. gen.sh decodes the golden file
// with the reference C++ tool into go-encoded.decoded.txt, so the committed
// pair shows that `mesh provision encode` output is read by other
// implementations.
func TestEncodeGolden(t *testing.T) {
	want, err := decodeFixture(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := NewWriter(&b).Write(msg); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("testdata", "fixtures", "go-encoded.bin")
	if *update {
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(b.Bytes(), fixture(t, "go-encoded.bin")) {
		t.Fatalf("Encode output differs from %s (run go test -run TestEncodeGolden -update, then testdata/gen.sh)", p)
	}
}

// FuzzReadDecode feeds arbitrary bytes through framing and decoding: neither
// may panic, hang or accept a message that Decode then fails to bound.
func FuzzReadDecode(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".bin") {
			b, err := os.ReadFile(filepath.Join("testdata", "fixtures", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), Limits{MaxMessageSize: 64 << 10, TraverseLimit: 256 << 10})
		for i := 0; i < 64; i++ {
			msg, err := r.Next()
			if err == io.EOF || errors.Is(err, ErrFraming) {
				return
			}
			if errors.Is(err, ErrTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("unexpected error kind: %v", err)
			}
			c, err := Decode(msg)
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("refusal is not a FieldError: %v", err)
				}
				continue
			}
			if c.Site.ID == "" {
				t.Fatal("accepted a config without site.id")
			}
			if _, err := Encode(c); err != nil {
				t.Fatalf("re-encode accepted config: %v", err)
			}
		}
	})
}
