package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/provision"
	"github.com/mycelium-mesh/mesh/core/provision/sitefile"
)

// runProvisionEncode turns HCL site descriptions into a packed stream.
func runProvisionEncode(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("provision encode", "provision encode SITES.hcl... > stream.bin", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	var all []sitefile.Site
	var diags hcl.Diagnostics
	sources := map[string][]byte{}
	for _, p := range fs.Args() {
		src, err := os.ReadFile(p)
		if err != nil {
			return fail(stderr, "read %s: %v", p, err)
		}
		sources[p] = src
		sites, d := sitefile.Parse(src, p)
		diags = append(diags, d...)
		all = append(all, sites...)
	}
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, diags, sources, 0, false)
		return exitError
	}
	bw := bufio.NewWriter(stdout)
	w := provision.NewWriter(bw)
	for _, s := range all {
		if err := w.Write(s.Message); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fail(stderr, "write stream: %v", err)
	}
	fmt.Fprintf(stderr, "encoded %d site(s)\n", len(all))
	return exitOK
}

// runProvisionDecode prints a packed stream as JSON, one line per message.
func runProvisionDecode(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("provision decode", "provision decode [stream.bin] (default stdin)", stderr)
	maxMsg := fs.Uint64("max-message-size", provision.DefaultMaxMessageSize, "largest message accepted, in unpacked `BYTES`")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	var r io.Reader = os.Stdin
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fail(stderr, "%v", err)
		}
		defer f.Close()
		r = f
	} else if fs.NArg() > 1 {
		fs.Usage()
		return exitUsage
	}
	rd := provision.NewReader(r, provision.Limits{MaxMessageSize: *maxMsg})
	enc := json.NewEncoder(stdout)
	code := exitOK
	for {
		msg, err := rd.Next()
		if err == io.EOF {
			return code
		}
		type line struct {
			Index  int               `json:"index"`
			Config *provision.Config `json:"config,omitempty"`
			Error  string            `json:"error,omitempty"`
		}
		if err != nil {
			_ = enc.Encode(line{Index: rd.Index(), Error: err.Error()})
			if errors.Is(err, provision.ErrFraming) {
				return provision.ExitFraming
			}
			code = provision.ExitSomeFailed
			continue
		}
		c, err := provision.Decode(msg)
		if err != nil {
			_ = enc.Encode(line{Index: rd.Index(), Error: err.Error()})
			code = provision.ExitSomeFailed
			continue
		}
		_ = enc.Encode(line{Index: rd.Index(), Config: c})
	}
}
