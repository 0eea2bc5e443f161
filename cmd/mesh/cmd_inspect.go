package main

import (
	"fmt"
	"io"

	"github.com/mycelium-mesh/mesh/core/spore"
)

func init() {
	register(&command{
		name:     "inspect",
		synopsis: "Print a spore's manifest (without verifying it)",
		run:      runInspect,
	})
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("inspect", "inspect FILE.spore\n\n"+
		"Prints the spore's manifest as JSON on stdout. The archive layout is\n"+
		"checked, but NOT the signature, the signer's trust or the binary digest:\n"+
		"use `mesh verify` for that.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "mesh inspect: exactly one spore file is required")
		fs.Usage()
		return exitUsage
	}
	m, err := spore.ReadManifest(fs.Arg(0))
	if err != nil {
		return fail(stderr, "%v", err)
	}
	b, err := m.MarshalIndent()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintln(stderr, "Note: not verified. Signature, signer trust and binary digest were not checked; run `mesh verify -trust KEY FILE.spore`.")
	stdout.Write(b)
	return exitOK
}
