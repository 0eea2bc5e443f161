// Command mesh is the Mycelium Mesh command line: it packs and verifies
// spores, publishes them, validates configuration and runs the mesh. Every
// subcommand lives in its own cmd_*.go file and registers itself in init.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes, HashiCorp style.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one `mesh` subcommand.
type command struct {
	name     string
	synopsis string
	hidden   bool
	// args are the words the command takes as its first argument (its
	// subcommands, or a fixed choice), offered by shell completion.
	args []string
	// run receives the arguments after the command name and returns an exit code.
	run func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("mesh: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		// `mesh help CMD` is `mesh CMD -h`.
		if len(args) == 1 {
			usage(stdout)
			return exitOK
		}
		args = []string{args[1], "-h"}
	case "-v", "-version", "--version":
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mesh: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdout, &cmdStderr{Writer: stderr, stdout: stdout})
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mesh <command> [options] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, n := range visibleCommands() {
		fmt.Fprintf(w, "    %-10s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `mesh <command> -h` (or `mesh help <command>`) for a command's options.")
}

// visibleCommands returns the names of the commands shown in help, sorted.
func visibleCommands() []string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// fail prints an error the way every command does and returns exitError.
func fail(stderr io.Writer, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(stderr, "Error: "+strings.TrimSpace(msg))
	return exitError
}
