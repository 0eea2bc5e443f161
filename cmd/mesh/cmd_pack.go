package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mycelium-mesh/mesh/core/spore"
)

func init() {
	register(&command{
		name:     "pack",
		synopsis: "Pack and sign a binary and its manifest into a spore",
		run:      runPack,
	})
}

func runPack(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("pack", "pack -binary FILE -manifest FILE -key FILE -out FILE.spore\n\n"+
		"Packs the binary with its manifest into a signed spore. The manifest file\n"+
		"holds identity, runtime, resources, slo and security; pack fills in\n"+
		"integrity (binary sha256, public key, creation time, signature). The\n"+
		"spore is written atomically. Prints the binary digest and the signer.", stderr)
	binary := fs.String("binary", "", "workload binary `FILE` to pack (required)")
	manifest := fs.String("manifest", "", "manifest JSON `FILE` (required)")
	keyFile := fs.String("key", "", "private key `FILE` written by mesh keygen (required)")
	out := fs.String("out", "", "spore `FILE` to write (required)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if *binary == "" || *manifest == "" || *keyFile == "" || *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "mesh pack: -binary, -manifest, -key and -out are required and no arguments are accepted")
		fs.Usage()
		return exitUsage
	}
	raw, err := os.ReadFile(*manifest)
	if err != nil {
		return fail(stderr, "read manifest: %v", err)
	}
	m, err := spore.DecodeUnsigned(raw)
	if err != nil {
		return fail(stderr, "manifest %s: %v", *manifest, err)
	}
	key, err := spore.ReadPrivateKey(*keyFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	m, err = spore.PackFile(*out, *binary, m, key)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "Packed %s %s into %s\n", m.Identity.Name, m.Identity.Version, *out)
	fmt.Fprintf(stdout, "binary sha256: %s\n", m.Integrity.BinarySHA256)
	fmt.Fprintf(stdout, "signed by:     %s\n", m.Integrity.PublicKey)
	return exitOK
}
