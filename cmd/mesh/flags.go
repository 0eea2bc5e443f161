package main

import (
	"flag"
	"fmt"
	"io"
)

// cmdStderr is the stderr realMain hands to a command. It writes to stderr
// like any writer, and carries the command's stdout so that help asked for
// with -h goes to stdout (exit 0) while usage errors stay on stderr (exit 2).
type cmdStderr struct {
	io.Writer
	stdout io.Writer
	// onHelp, when set, receives the command's flag set instead of the help
	// being printed: `mesh completion` uses it to list a command's flags
	// from the command itself.
	onHelp func(*flag.FlagSet)
}

// newFlagSet returns a flag set that reports usage errors to stderr and whose
// help text starts with the given usage line. Flag usage strings name their
// value in backquotes (`FILE`, `ADDR`), which help prints as the placeholder.
func newFlagSet(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mesh %s\n", usageLine)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nOptions:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args and maps the outcome to an exit code: -1 means go
// on. -h prints the help on the command's stdout and returns exitOK; a usage
// error prints the error and the help on stderr and returns exitUsage.
func parseFlags(fs *flag.FlagSet, args []string) int {
	usage := fs.Usage
	fs.Usage = func() {} // printed below, where it belongs
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		return -1
	case err == flag.ErrHelp:
		out := fs.Output()
		if cs, ok := out.(*cmdStderr); ok {
			if cs.onHelp != nil {
				cs.onHelp(fs)
				return exitOK
			}
			fs.SetOutput(cs.stdout)
			defer fs.SetOutput(out)
		}
		fs.Usage()
		return exitOK
	default:
		fs.Usage()
		return exitUsage
	}
}
