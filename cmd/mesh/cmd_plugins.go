package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

func init() {
	register(&command{
		name:     "plugins",
		synopsis: "List configured and bundled plugins and check that they start",
		run:      runPlugins,
	})
}

func runPlugins(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plugins", "plugins [-config mesh.hcl] [-timeout 10s]", stderr)
	cfgPath := fs.String("config", "mesh.hcl", "configuration `FILE`")
	timeout := fs.Duration("timeout", 10*time.Second, "how long each plugin may take to start and answer")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, diags := config.Load(*cfgPath)
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(stderr, diags, nil, 100, false)
		return exitError
	}
	host, err := pluginhost.New(pluginhost.Options{
		Logger:       hclog.New(&hclog.LoggerOptions{Name: "mesh", Level: hclog.Warn, Output: stderr}),
		StartTimeout: *timeout,
		EvalContext:  config.EvalContext(),
		CallTimeout:  *timeout,
	})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer host.Close()

	type row struct {
		spec       pluginhost.Spec
		configured bool
	}
	var rows []row
	seen := map[string]bool{}
	for _, b := range cfg.Plugins {
		rows = append(rows, row{pluginhost.Spec{Kind: b.Kind, Name: b.Name, Command: b.Command, SHA256: b.SHA256, Config: b.Config, DeclRange: b.DeclRange}, true})
		seen[b.Kind+"/"+b.Name] = true
	}
	for _, info := range pluginhost.Bundled() {
		if !seen[info.Kind+"/"+info.Name] {
			rows = append(rows, row{pluginhost.Spec{Kind: info.Kind, Name: info.Name}, false})
		}
	}

	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	used := map[string]bool{
		"health/" + cfg.Health.Plugin:   true,
		"balancer/" + cfg.Edge.Balancer: true,
		"repo/" + cfg.Repo.Backend:      cfg.Repo.Backend != "",
	}
	for _, a := range cfg.Apps {
		used["balancer/"+a.Balancer] = true
	}
	fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tSOURCE\tCONFIGURED\tIN USE\tSTATUS")
	failed := 0
	var problems []string
	for _, r := range rows {
		source := "bundled"
		if r.spec.Command != "" {
			source = r.spec.Command
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		info, diags, _ := host.Check(ctx, r.spec)
		cancel()
		status, version := "ok", info.Version
		if version == "" {
			version = "-"
		}
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				status = "FAILED"
				problems = append(problems, "Error: "+diagLine(d))
			} else {
				problems = append(problems, "Warning: "+diagLine(d))
				if status == "ok" {
					status = "ok (schema only)"
				}
			}
		}
		if status == "FAILED" {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.spec.Kind, r.spec.Name, version, source, yesNo(r.configured), yesNo(used[r.spec.Kind+"/"+r.spec.Name]), status)
	}
	tw.Flush()
	if len(problems) > 0 {
		fmt.Fprintln(stderr)
		for _, p := range problems {
			fmt.Fprintln(stderr, strings.TrimSpace(p))
		}
	}
	if failed > 0 {
		return exitError
	}
	return exitOK
}

// diagLine is a diagnostic on one line: file:line,column: summary; detail.
func diagLine(d *hcl.Diagnostic) string {
	msg := d.Summary
	if d.Detail != "" {
		msg += "; " + d.Detail
	}
	if d.Subject != nil && d.Subject.Filename != "" {
		msg = fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
	}
	return msg
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
