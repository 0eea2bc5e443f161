package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func init() {
	register(&command{
		name:     "version",
		synopsis: "Print the mesh version",
		run: func(args []string, stdout, stderr io.Writer) int {
			fs := newFlagSet("version", "version", stderr)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			rev := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						rev = " (" + s.Value[:12] + ")"
					}
				}
			}
			fmt.Fprintf(stdout, "mesh %s%s %s/%s %s\n", Version, rev, runtime.GOOS, runtime.GOARCH, runtime.Version())
			return exitOK
		},
	})
}
