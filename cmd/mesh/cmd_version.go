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
		synopsis: "Print the mesh version, and the module version, commit and commit date it was built from",
		run: func(args []string, stdout, stderr io.Writer) int {
			fs := newFlagSet("version", "version\n\n"+
				"Prints the release version, then what the Go build info says about\n"+
				"this binary: module version, VCS commit (with \"(modified)\" when the\n"+
				"tree had uncommitted changes) and the commit's date. A field the build\n"+
				"did not record reads \"unknown\".", stderr)
			if code := parseFlags(fs, args); code >= 0 {
				return code
			}
			if fs.NArg() > 0 {
				fmt.Fprintf(fs.Output(), "mesh version: unexpected arguments %v\n", fs.Args())
				fs.Usage()
				return exitUsage
			}
			bi, _ := debug.ReadBuildInfo()
			writeVersion(stdout, readBuild(bi))
			return exitOK
		},
	})
}

// buildFacts is what the version command reports; every field is "unknown"
// when the build did not record it.
type buildFacts struct {
	module, commit, date, goVersion string
	modified                        bool
}

// readBuild extracts the facts from Go's build info (nil when the binary
// has none).
func readBuild(bi *debug.BuildInfo) buildFacts {
	f := buildFacts{module: "unknown", commit: "unknown", date: "unknown", goVersion: runtime.Version()}
	if bi == nil {
		return f
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		f.module = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				f.commit = s.Value
			}
		case "vcs.time":
			if s.Value != "" {
				f.date = s.Value
			}
		case "vcs.modified":
			f.modified = s.Value == "true"
		}
	}
	if bi.GoVersion != "" {
		f.goVersion = bi.GoVersion
	}
	return f
}

func writeVersion(w io.Writer, f buildFacts) {
	commit := f.commit
	if f.modified && commit != "unknown" {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "mesh %s\n", Version)
	fmt.Fprintf(w, "module:  %s\n", f.module)
	fmt.Fprintf(w, "commit:  %s\n", commit)
	fmt.Fprintf(w, "date:    %s\n", f.date)
	fmt.Fprintf(w, "go:      %s %s/%s\n", f.goVersion, runtime.GOOS, runtime.GOARCH)
}
