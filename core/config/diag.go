package config

import (
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// WriteDiagnostics prints diagnostics the way HashiCorp tools do: severity
// and summary, then "on FILE line N, in BLOCK:" with the offending source
// line(s) and the detail. sources maps file names to their contents; files
// not in it are read from disk (a diagnostic whose file cannot be read is
// still printed, without the source excerpt). width wraps the detail text;
// 0 disables wrapping.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, sources map[string][]byte, width uint, color bool) error {
	files := map[string]*hcl.File{}
	for _, d := range diags {
		for _, r := range []*hcl.Range{d.Subject, d.Context} {
			if r == nil || r.Filename == "" {
				continue
			}
			if _, done := files[r.Filename]; done {
				continue
			}
			src, ok := sources[r.Filename]
			if !ok {
				var err error
				if src, err = os.ReadFile(r.Filename); err != nil {
					files[r.Filename] = nil
					continue
				}
			}
			// Parsing gives the writer what it needs to name the enclosing
			// block; a file with syntax errors still yields its bytes.
			f, _ := hclsyntax.ParseConfig(src, r.Filename, hcl.InitialPos)
			if f == nil {
				f = &hcl.File{Bytes: src}
			}
			files[r.Filename] = f
		}
	}
	tw := hcl.NewDiagnosticTextWriter(w, files, width, color)
	if err := tw.WriteDiagnostics(diags); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}
