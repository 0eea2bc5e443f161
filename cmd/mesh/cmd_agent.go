package main

import (
	"fmt"
	"io"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func init() {
	register(&command{
		name:     "agent",
		synopsis: "Run this host's agents, joined to the cluster named in mesh.hcl",
		run: func(args []string, stdout, stderr io.Writer) int {
			return runRole("agent", mesh.RoleAgents, args, stderr)
		},
	})
	register(&command{
		name:     "edge",
		synopsis: "Run an HTTP edge of the cluster named in mesh.hcl",
		run: func(args []string, stdout, stderr io.Writer) int {
			return runRole("edge", mesh.RoleEdge, args, stderr)
		},
	})
}

// runRole runs one role of a cluster: `mesh agent` or `mesh edge`. Both
// need a cluster block; they wait for etcd, and stop on SIGINT or SIGTERM.
func runRole(name string, role mesh.Role, args []string, stderr io.Writer) int {
	fs := newFlagSet(name, name+" [-config mesh.hcl]", stderr)
	cfgPath := fs.String("config", "mesh.hcl", "mesh configuration `FILE` (with a cluster block)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mesh %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage
	}
	return runMesh(*cfgPath, 0, role, stderr)
}
