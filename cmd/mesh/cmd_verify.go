package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mycelium-mesh/mesh/core/spore"
)

func init() {
	register(&command{
		name:     "verify",
		synopsis: "Verify a spore's layout, digest, signature and signer",
		run:      runVerify,
	})
}

// trustList collects repeated -trust flags.
type trustList []string

func (t *trustList) String() string { return strings.Join(*t, ", ") }
func (t *trustList) Set(v string) error {
	*t = append(*t, v)
	return nil
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "verify -trust PUBKEY|FILE [-trust ...] FILE.spore\n\n"+
		"Checks the spore completely without extracting it: archive layout and\n"+
		"sizes, manifest, binary sha256, signature, and that the signer is one of\n"+
		"the trusted keys. A key carried inside the spore is not trusted by itself.\n"+
		"Prints \"OK <name> <version> <signer>\" on success.", stderr)
	var trust trustList
	fs.Var(&trust, "trust", "trusted public `KEY` (\"ed25519:...\") or key file; repeatable, at least one")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if len(trust) == 0 || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "mesh verify: at least one -trust and exactly one spore file are required")
		fs.Usage()
		return exitUsage
	}
	keys, err := spore.LoadTrustedKeys(trust)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	m, err := spore.Verify(fs.Arg(0), keys)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "OK %s %s %s\n", m.Identity.Name, m.Identity.Version, m.Integrity.PublicKey)
	return exitOK
}
