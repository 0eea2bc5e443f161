package main

import (
	"fmt"
	"io"

	"github.com/mycelium-mesh/mesh/core/spore"
)

func init() {
	register(&command{
		name:     "keygen",
		synopsis: "Create an ed25519 key pair for signing spores",
		run:      runKeygen,
	})
}

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen", "keygen -out PREFIX\n\n"+
		"Writes a new ed25519 key pair: PREFIX.key (private, mode 0600, keep it\n"+
		"secret) and PREFIX.pub (public). Trust the public key in mesh.hcl or with\n"+
		"`mesh verify -trust`. Existing files are never overwritten.", stderr)
	out := fs.String("out", "", "path `PREFIX` of the key files (required)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "mesh keygen: -out PREFIX is required and no arguments are accepted")
		fs.Usage()
		return exitUsage
	}
	pubPath, privPath, err := spore.GenerateKeyPair(*out)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	keys, err := spore.LoadTrustedKeys([]string{pubPath})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "Private key: %s (keep it secret)\n", privPath)
	fmt.Fprintf(stdout, "Public key:  %s\n", pubPath)
	fmt.Fprintln(stdout, spore.FormatPublicKey(keys[0]))
	return exitOK
}
