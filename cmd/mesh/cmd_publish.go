package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
)

func init() {
	register(&command{
		name:     "publish",
		synopsis: "Store a spore in a content-addressed repo and print its digest",
		run:      runPublish,
	})
}

// publishTrust collects the repeatable -trust flag of publish.
type publishTrust []string

func (s *publishTrust) String() string { return strings.Join(*s, ", ") }
func (s *publishTrust) Set(v string) error {
	*s = append(*s, v)
	return nil
}

func runPublish(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("publish", "publish [-repo DIR] [-trust KEY|FILE]... FILE.spore\n\n"+
		"Copies the spore into the repo under the sha256 of its bytes and prints\n"+
		"the digest (\"sha256:<hex>\") on stdout. Publishing the same file again\n"+
		"prints the same digest. Publishing does not verify the spore (agents\n"+
		"verify before running); with -trust it is verified first and refused\n"+
		"unless signed by one of the given keys.", stderr)
	dir := fs.String("repo", config.DefaultRepoDir, "repo `DIR` (created if missing)")
	var trust publishTrust
	fs.Var(&trust, "trust", "verify against this public `KEY` (\"ed25519:...\") or key file before publishing; repeatable")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "mesh publish: exactly one spore file is required")
		fs.Usage()
		return exitUsage
	}
	file := fs.Arg(0)
	if len(trust) > 0 {
		keys, err := spore.LoadTrustedKeys(trust)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		m, err := spore.Verify(file, keys)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		fmt.Fprintf(stderr, "verified %s %s (signed by %s)\n", m.Identity.Name, m.Identity.Version, m.Integrity.PublicKey)
	}
	r, err := repo.Open(*dir)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	digest, err := r.Put(file)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintln(stdout, digest)
	return exitOK
}
