package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionScripts runs the real binary for each shell: the script must
// parse (bash -n; zsh -n and fish -n when those shells are installed) and
// name every visible command and every flag of each.
func TestCompletionScripts(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	cmds := completionCommands()
	if len(cmds) < 10 {
		t.Fatalf("only %d commands found in the registry", len(cmds))
	}
	tests := []struct {
		shell string
		check []string // shell and its syntax-check flags
		flag  func(cmd, flag string) string
	}{
		{"bash", []string{"bash", "-n"}, func(_, f string) string { return " -" + f + " " }},
		{"zsh", []string{"zsh", "-n"}, func(_, f string) string { return "'-" + f + "[" }},
		{"fish", []string{"fish", "-n"}, func(c, f string) string { return "from " + c + "' -o " + f + " " }},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, script, stderr := runConfigMesh(t, bin, dir, "completion", tt.shell)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, c := range cmds {
				if !strings.Contains(script, c.name) {
					t.Errorf("script lacks command %s", c.name)
				}
				for _, f := range c.flags {
					// bash lists flags space separated within quotes.
					s := strings.NewReplacer(`"`, " ").Replace(script)
					if !strings.Contains(s, tt.flag(c.name, f.name)) {
						t.Errorf("script lacks flag -%s of %s", f.name, c.name)
					}
				}
			}
			if _, err := exec.LookPath(tt.check[0]); err != nil {
				t.Skipf("%s not installed: syntax not checked", tt.check[0])
			}
			cmd := exec.Command(tt.check[0], tt.check[1:]...)
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v rejects the script: %v\n%s", tt.check, err, out)
			}
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if code, stdout, stderr := runConfigMesh(t, bin, dir, args...); code != exitUsage || stdout != "" || !strings.Contains(stderr, "Usage: mesh completion") {
			t.Errorf("mesh %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// TestBashCompletionCompletes loads the bash script into a real bash and
// asks its function what it offers, the way bash does on Tab.
func TestBashCompletionCompletes(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	var script strings.Builder
	writeBashCompletion(&script, completionCommands())
	tests := []struct {
		words     []string // the command line, the last word being completed
		want      []string
		wantEmpty bool
	}{
		{words: []string{"mesh", "sta"}, want: []string{"status"}},
		{words: []string{"mesh", "ro"}, want: []string{"rollback"}},
		{words: []string{"mesh", "status", "-j"}, want: []string{"-json"}},
		{words: []string{"mesh", "pack", "-b"}, want: []string{"-binary"}},
		{words: []string{"mesh", "completion", ""}, want: []string{"bash", "zsh", "fish"}},
		{words: []string{"mesh", "provision", "enc"}, want: []string{"encode"}},
		{words: []string{"mesh", "pack", "-key", ""}, wantEmpty: true}, // a file name: bash's default
		{words: []string{"mesh", "nosuch", "-"}, wantEmpty: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			var quoted []string
			for _, w := range tt.words {
				quoted = append(quoted, "'"+w+"'")
			}
			prog := script.String() + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
				"COMP_CWORD=" + strconv.Itoa(len(tt.words)-1) + "\n_mesh\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
			out, err := exec.Command("bash", "-c", prog).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if tt.wantEmpty && len(got) != 0 {
				t.Fatalf("offered %v, want nothing", got)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("offered %v, want %v", got, tt.want)
			}
		})
	}
}
