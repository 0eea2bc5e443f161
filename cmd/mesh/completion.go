package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Shell completion is generated from the command registry: each visible
// command is asked for its flag set (it runs with -h, and parseFlags hands
// the flag set over instead of printing help), so a new command or flag is
// completed without a list to keep up to date.

var completionShells = []string{"bash", "zsh", "fish"}

func init() {
	register(&command{
		name:     "completion",
		synopsis: "Print a shell completion script (bash, zsh or fish)",
		args:     completionShells,
		run:      runCompletion,
	})
}

func runCompletion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", "completion bash|zsh|fish\n\n"+
		"Prints a completion script for the commands and their flags.\n"+
		"  bash: source <(mesh completion bash)   (e.g. in ~/.bashrc)\n"+
		"  zsh:  mesh completion zsh > \"${fpath[1]}/_mesh\"   (or source it after compinit)\n"+
		"  fish: mesh completion fish > ~/.config/fish/completions/mesh.fish", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(fs.Output(), "mesh completion: name one shell: bash, zsh or fish")
		fs.Usage()
		return exitUsage
	}
	cmds := completionCommands()
	switch fs.Arg(0) {
	case "bash":
		writeBashCompletion(stdout, cmds)
	case "zsh":
		writeZshCompletion(stdout, cmds)
	case "fish":
		writeFishCompletion(stdout, cmds)
	default:
		fmt.Fprintf(fs.Output(), "mesh completion: unknown shell %q: bash, zsh or fish\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	return exitOK
}

// completionFlag is one flag as completion offers it.
type completionFlag struct {
	name, usage string
	// value is true when the flag takes a value (it is not a boolean).
	value bool
}

// completionCommand is one command as completion offers it.
type completionCommand struct {
	name, synopsis string
	args           []string
	flags          []completionFlag
}

// completionCommands lists the visible commands with their flags, sorted.
func completionCommands() []completionCommand {
	var out []completionCommand
	for _, name := range visibleCommands() {
		c := commands[name]
		cc := completionCommand{name: name, synopsis: c.synopsis, args: c.args}
		var seen *flag.FlagSet
		errw := &cmdStderr{Writer: io.Discard, stdout: io.Discard, onHelp: func(fs *flag.FlagSet) { seen = fs }}
		c.run([]string{"-h"}, io.Discard, errw)
		if seen != nil {
			seen.VisitAll(func(f *flag.Flag) {
				_, usage := flag.UnquoteUsage(f)
				bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
				cc.flags = append(cc.flags, completionFlag{name: f.Name, usage: usage, value: !isBool || !bf.IsBoolFlag()})
			})
			sort.Slice(cc.flags, func(i, j int) bool { return cc.flags[i].name < cc.flags[j].name })
		}
		out = append(out, cc)
	}
	return out
}

// oneLineText flattens a description to one line of printable text.
func oneLineText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '`' {
			return -1
		}
		return r
	}, strings.Join(strings.Fields(s), " "))
}

// zshQuote quotes s for zsh in single quotes.
func zshQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range oneLineText(s) {
		switch {
		case r == '\'':
			b.WriteString(`'\''`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// fishQuote quotes s for fish in single quotes.
func fishQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(oneLineText(s)) + "'"
}

func writeBashCompletion(w io.Writer, cmds []completionCommand) {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	fmt.Fprintf(w, `# bash completion for mesh. Load it with: source <(mesh completion bash)
_mesh() {
    local cur prev flags values args
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "%s -h --help" -- "$cur") )
        return 0
    fi
    case "${COMP_WORDS[1]}" in
`, strings.Join(names, " "))
	for _, c := range cmds {
		var flags, values []string
		for _, f := range c.flags {
			flags = append(flags, "-"+f.name)
			if f.value {
				values = append(values, "-"+f.name)
			}
		}
		fmt.Fprintf(w, "    %s)\n        flags=%q; values=%q; args=%q ;;\n", c.name,
			strings.Join(append(flags, "-h"), " "), strings.Join(values, " "), strings.Join(c.args, " "))
	}
	fmt.Fprint(w, `    *)
        return 0 ;;
    esac
    # A flag's value: leave it to the default (file name) completion.
    if [[ -n $values && " $values " == *" $prev "* ]]; then
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
        return 0
    fi
    if [[ $COMP_CWORD -eq 2 && -n $args ]]; then
        COMPREPLY=( $(compgen -W "$args" -- "$cur") )
    fi
    return 0
}
complete -o default -F _mesh mesh
`)
}

func writeZshCompletion(w io.Writer, cmds []completionCommand) {
	fmt.Fprint(w, `#compdef mesh
# zsh completion for mesh. Put it in a directory of $fpath as _mesh, or
# source it after compinit.
_mesh() {
    local -a cmds
    cmds=(
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "        %s\n", zshQuote(c.name+":"+strings.ReplaceAll(c.synopsis, ":", `\:`)))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'mesh command' cmds
        return
    fi
    shift words
    (( CURRENT-- ))
    case "${words[1]}" in
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "    %s)\n        _arguments \\\n", c.name)
		for _, f := range c.flags {
			spec := "-" + f.name + "[" + strings.NewReplacer("[", `\[`, "]", `\]`).Replace(f.usage) + "]"
			if f.value {
				spec += ":value:_files"
			}
			fmt.Fprintf(w, "            %s \\\n", zshQuote(spec))
		}
		if len(c.args) > 0 {
			fmt.Fprintf(w, "            '1:argument:(%s)' \\\n", strings.Join(c.args, " "))
		}
		fmt.Fprint(w, "            '*:file:_files' ;;\n")
	}
	fmt.Fprint(w, `    esac
}
if [[ "${funcstack[1]}" == _mesh ]]; then
    _mesh "$@"
else
    compdef _mesh mesh
fi
`)
}

func writeFishCompletion(w io.Writer, cmds []completionCommand) {
	fmt.Fprintln(w, "# fish completion for mesh. Save it as ~/.config/fish/completions/mesh.fish")
	fmt.Fprintln(w, "complete -c mesh -e")
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c mesh -f -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.synopsis))
	}
	for _, c := range cmds {
		cond := "__fish_seen_subcommand_from " + c.name
		for _, f := range c.flags {
			req := ""
			if f.value {
				req = " -r -F"
			}
			fmt.Fprintf(w, "complete -c mesh -n '%s' -o %s%s -d %s\n", cond, f.name, req, fishQuote(f.usage))
		}
		if len(c.args) > 0 {
			fmt.Fprintf(w, "complete -c mesh -f -n '%s' -a '%s'\n", cond, strings.Join(c.args, " "))
		}
	}
}
