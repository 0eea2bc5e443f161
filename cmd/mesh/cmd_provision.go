package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/provision"
)

func init() {
	register(&command{
		name:     "provision",
		synopsis: "Make websites exist as a stream of SporeConfig messages describes",
		args:     []string{"encode", "decode"},
		run:      runProvision,
	})
}

const provisionUsage = `provision [options] < stream.bin
       mesh provision -listen unix:///path/provision.sock [options]
       mesh provision encode SITES.hcl... > stream.bin
       mesh provision decode [stream.bin]`

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runProvision(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "encode":
			return runProvisionEncode(args[1:], stdout, stderr)
		case "decode":
			return runProvisionDecode(args[1:], stdout, stderr)
		}
	}
	fs := newFlagSet("provision", provisionUsage, stderr)
	cf := addControlFlags(fs)
	listen := fs.String("listen", "", "serve producers on `ADDR` (unix:///path; a long-lived daemon) instead of reading stdin")
	plan := fs.Bool("plan", false, "print each site's plan and change nothing")
	dataDir := fs.String("data-dir", "", "`DIR` where ownership records live (default: the mesh's data_dir from mesh.hcl, else ./.mesh/data)")
	maxMsg := fs.Uint64("max-message-size", provision.DefaultMaxMessageSize, "largest message accepted, in unpacked `BYTES`")
	traverse := fs.Uint64("traverse-limit", provision.DefaultTraverseLimit, "`BYTES` a message's decoding may read")
	queue := fs.Int("queue", provision.DefaultQueueSize, "accept at most `N` messages not yet applied before reading pauses")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGTERM: how long in-flight work may take before it is cancelled")
	logLevel := fs.String("log-level", "info", "`LEVEL` of the log on stderr: trace, debug, info, warn, error, off")
	var builds, providers multiFlag
	fs.Var(&builds, "build", "run `TYPE=COMMAND` to build sites of a build type, e.g. hugoNix='hugo --minify' (repeatable)")
	fs.Var(&providers, "provider", "given `PROVIDER=PLUGIN`, host a provider's sites with the named hosting plugin (repeatable)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mesh provision: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "provision", Output: stderr, Level: hclog.LevelFromString(*logLevel)})

	buildCmds, err := parseBuilds(builds)
	if err != nil {
		fmt.Fprintf(stderr, "mesh provision: %v\n", err)
		return exitUsage
	}
	env, err := loadProvisionEnv(cf, *dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return provision.ExitConfigMissing
	}
	backends, closeBackends, err := provisionBackends(env, providers, log)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return provision.ExitConfigMissing
	}
	defer closeBackends()

	engine := provision.NewEngine(provision.EngineOptions{
		Backends:      backends,
		Owners:        &provision.Owners{Dir: filepath.Join(env.dataDir, "provision", "owned")},
		Plan:          *plan,
		QueueSize:     *queue,
		BuildCommands: buildCmds,
		Log:           log,
	})
	reporter := provision.NewReporter(stdout)
	in := &provision.Ingestor{Engine: engine, Reporter: reporter, Log: log,
		Limits: provision.Limits{MaxMessageSize: *maxMsg, TraverseLimit: *traverse}}

	// readCtx ends on SIGTERM/SIGINT: stop reading. runCtx ends
	// -shutdown-timeout later: cancel what is still in flight.
	readCtx, stopReading := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopReading()
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	context.AfterFunc(readCtx, func() {
		log.Info("signal: stopped reading, finishing in-flight work", "deadline", *shutdown)
		time.AfterFunc(*shutdown, cancelRun)
	})

	if *listen != "" {
		return serveProvision(readCtx, runCtx, in, *listen, log, stderr)
	}
	done := make(chan error, 1)
	go func() { done <- in.Stream(readCtx, runCtx, "stdin", os.Stdin, nil) }()
	select {
	case <-done:
	case <-readCtx.Done():
		// A read of stdin cannot be interrupted; what was accepted is
		// finished (or cancelled at the deadline) and the reader left.
		engine.Wait()
	}
	return reporter.ExitCode()
}

func serveProvision(readCtx, runCtx context.Context, in *provision.Ingestor, listen string, log hclog.Logger, stderr io.Writer) int {
	path, ok := strings.CutPrefix(listen, "unix://")
	if !ok || path == "" {
		fmt.Fprintf(stderr, "mesh provision: -listen %q: want unix:///path\n", listen)
		return exitUsage
	}
	if err := removeStaleSocket(path); err != nil {
		return fail(stderr, "%v", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fail(stderr, "listen %s: %v", path, err)
	}
	defer os.Remove(path)
	log.Info("accepting producers", "socket", path)
	if err := in.Serve(readCtx, runCtx, l); err != nil {
		return fail(stderr, "%v", err)
	}
	in.Engine.Wait()
	return exitOK
}

// removeStaleSocket removes a socket file no process answers on, and refuses
// to take over one that is live.
func removeStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another provisioner is listening there", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

func parseBuilds(flags []string) (map[provision.BuildType][]string, error) {
	out := map[provision.BuildType][]string{}
	for _, f := range flags {
		name, cmd, ok := strings.Cut(f, "=")
		var bt provision.BuildType
		if !ok || bt.UnmarshalText([]byte(name)) != nil || strings.TrimSpace(cmd) == "" {
			return nil, fmt.Errorf("-build %q: want TYPE=COMMAND with TYPE one of hugoNix, nextStatic, astroStatic", f)
		}
		out[bt] = strings.Fields(cmd)
	}
	return out, nil
}

// provisionEnv is what `mesh provision` takes from mesh.hcl and its flags.
type provisionEnv struct {
	cfg     *config.Config // nil without a mesh.hcl
	dataDir string
	control *controlFlags
}

func loadProvisionEnv(cf *controlFlags, dataDir string) (*provisionEnv, error) {
	env := &provisionEnv{control: cf, dataDir: dataDir}
	path := *cf.config
	if path == "" {
		if _, err := os.Stat("mesh.hcl"); err == nil {
			path = "mesh.hcl"
		}
	}
	if path != "" {
		cfg, diags := config.Load(path)
		if diags.HasErrors() {
			var b strings.Builder
			_ = config.WriteDiagnostics(&b, diags, nil, 0, false)
			return nil, fmt.Errorf("load %s:\n%s", path, strings.TrimSpace(b.String()))
		}
		env.cfg = cfg
		*cf.config = path
		if env.dataDir == "" {
			env.dataDir = cfg.DataDir
		}
	}
	if env.dataDir == "" {
		env.dataDir = config.DefaultDataDir
	}
	abs, err := filepath.Abs(env.dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", env.dataDir, err)
	}
	env.dataDir = abs
	return env, nil
}
