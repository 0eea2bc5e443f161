package config

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/mycelium-mesh/mesh/core/spore"
)

// Load reads, decodes and validates the configuration file at path. The
// returned Config is nil when the diagnostics hold an error; warnings may
// come with a valid Config.
func Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read configuration file",
			Detail:   fmt.Sprintf("Reading %s: %s.", path, err),
		}}
	}
	return Parse(src, path)
}

// Parse decodes and validates configuration source. filename names the file
// in diagnostics, and its directory is the base of relative paths.
func Parse(src []byte, filename string) (*Config, hcl.Diagnostics) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot resolve configuration path",
			Detail:   fmt.Sprintf("Resolving %s: %s.", filename, err),
		})
	}
	d := &decoder{ctx: EvalContext(), base: filepath.Dir(abs)}
	cfg := d.decodeFile(file.Body)
	cfg.File = abs
	diags = append(diags, d.diags...)
	sortDiagnostics(diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

// EvalContext is the evaluation context of mesh.hcl expressions: it offers
// env("NAME"). Plugin config blocks are decoded with it too.
func EvalContext() *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env": function.New(&function.Spec{
				Description: "Returns the value of an environment variable, or \"\" when it is unset.",
				Params:      []function.Parameter{{Name: "name", Type: cty.String}},
				Type:        function.StaticReturnType(cty.String),
				Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
					name := args[0].AsString()
					if name == "" || strings.ContainsAny(name, "=\x00") {
						return cty.NilVal, function.NewArgErrorf(0, "invalid environment variable name %q", name)
					}
					return cty.StringVal(os.Getenv(name)), nil
				},
			}),
		},
	}
}

var (
	topSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "data_dir"}, {Name: "run_dir"}, {Name: "warmup"}, {Name: "grace"},
			{Name: "trusted_keys"}, {Name: "log_level"}, {Name: "progress_deadline"},
			{Name: "min_healthy"},
		},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "repo"}, {Type: "edge"}, {Type: "control"}, {Type: "agents"}, {Type: "health"},
			{Type: "plugin", LabelNames: []string{"kind", "name"}},
			{Type: "app", LabelNames: []string{"name"}},
			{Type: "provision"},
			{Type: "cluster"},
		},
	}
	repoSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "dir"}, {Name: "backend"}}}
	edgeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "listen"}, {Name: "admin"}, {Name: "log_interval"}, {Name: "balancer"},
		{Name: "read_header_timeout"}, {Name: "idle_timeout"}, {Name: "upstream_timeout"},
		{Name: "max_header_bytes"},
		{Name: "request_body_timeout"}, {Name: "write_timeout"}, {Name: "stream_idle_timeout"},
		{Name: "max_connections"}, {Name: "trusted_proxies"},
		{Name: "max_conns_per_endpoint"},
	}}
	controlSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "socket"}, {Name: "listen"}, {Name: "token"},
	}}
	agentsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "count"}, {Name: "health_timeout"}, {Name: "enforce_nutrients"}, {Name: "max_pids"}, {Name: "adopt"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "node", LabelNames: []string{"id"}}},
	}
	nodeSchema   = &hcl.BodySchema{}
	healthSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "plugin"}, {Name: "path"}, {Name: "timeout"},
	}}
	pluginSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "command"}, {Name: "sha256"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "config"}},
	}
	appSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "digest"}, {Name: "spore"}, {Name: "min"}, {Name: "max"}, {Name: "port"},
			{Name: "restart"}, {Name: "strip_prefix"}, {Name: "balancer"}, {Name: "health_path"},
			{Name: "progress_deadline"}, {Name: "min_healthy"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "budget"}, {Type: "logs"}},
	}
	budgetSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "max_instances"}, {Name: "cpu_milli"}, {Name: "memory_mb"},
	}}
)

// decoder accumulates diagnostics while decoding one file.
type decoder struct {
	ctx   *hcl.EvalContext
	base  string // directory relative paths are resolved against
	diags hcl.Diagnostics
	// agentsDeclared: the agents block has count or node blocks (in a
	// cluster, anything else keeps the one agent named after the host).
	agentsDeclared bool
}

func (d *decoder) errorf(subject hcl.Range, summary, format string, a ...any) {
	r := subject
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &r,
	})
}

func (d *decoder) warnf(subject hcl.Range, summary, format string, a ...any) {
	r := subject
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, a...), Subject: &r,
	})
}

// content decodes a body against its schema, recording diagnostics.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	return c
}

// value evaluates attribute name (if present and not null) and converts it
// to ty. ok is false when the attribute is absent, null or invalid.
func (d *decoder) value(attrs hcl.Attributes, name string, ty cty.Type) (v cty.Value, rng hcl.Range, ok bool) {
	a, present := attrs[name]
	if !present {
		return cty.NilVal, hcl.Range{}, false
	}
	rng = a.Expr.Range()
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, rng, false
	}
	if !v.IsWhollyKnown() {
		d.errorf(rng, "Unknown value", "The value of %q must be known when the configuration is loaded.", name)
		return cty.NilVal, rng, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(rng, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", name, err)
		return cty.NilVal, rng, false
	}
	return cv, rng, true
}

// str decodes a string attribute into dst.
func (d *decoder) str(attrs hcl.Attributes, name string, dst *string) (hcl.Range, bool) {
	v, rng, ok := d.value(attrs, name, cty.String)
	if !ok {
		return rng, false
	}
	*dst = v.AsString()
	return rng, true
}

// integer decodes a whole-number attribute into dst.
func (d *decoder) integer(attrs hcl.Attributes, name string, dst *int) (hcl.Range, bool) {
	v, rng, ok := d.value(attrs, name, cty.Number)
	if !ok {
		return rng, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		d.errorf(rng, "Invalid whole number", "The value of %q must be a whole number, not %s.", name, bf.Text('g', -1))
		return rng, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || i > 1<<31-1 || i < -(1<<31) {
		d.errorf(rng, "Number out of range", "The value of %q is too large.", name)
		return rng, false
	}
	*dst = int(i)
	return rng, true
}

// nonNegative decodes a whole-number attribute that must be >= 0.
func (d *decoder) nonNegative(attrs hcl.Attributes, name string, dst *int) (hcl.Range, bool) {
	var n int
	rng, ok := d.integer(attrs, name, &n)
	if !ok {
		return rng, false
	}
	if n < 0 {
		d.errorf(rng, "Negative number", "The value of %q must not be negative; got %d.", name, n)
		return rng, false
	}
	*dst = n
	return rng, true
}

// boolean decodes a bool attribute into dst.
func (d *decoder) boolean(attrs hcl.Attributes, name string, dst *bool) {
	v, _, ok := d.value(attrs, name, cty.Bool)
	if ok {
		*dst = v.True()
	}
}

// duration decodes a duration string such as "2s". With positive set, zero
// is refused as well as negative values.
func (d *decoder) duration(attrs hcl.Attributes, name string, dst *time.Duration, positive bool) {
	var s string
	rng, ok := d.str(attrs, name, &s)
	if !ok {
		return
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.errorf(rng, "Invalid duration", "The value of %q must be a duration such as \"2s\" or \"250ms\"; %q is not one.", name, s)
		return
	}
	if dur < 0 || (positive && dur == 0) {
		want := "must not be negative"
		if positive {
			want = "must be greater than zero"
		}
		d.errorf(rng, "Invalid duration", "The value of %q %s; got %s.", name, want, s)
		return
	}
	*dst = dur
}

// path decodes a path attribute and resolves it against the file's directory.
func (d *decoder) path(attrs hcl.Attributes, name string, dst *string, allowEmpty bool) (hcl.Range, bool) {
	var s string
	rng, ok := d.str(attrs, name, &s)
	if !ok {
		return rng, false
	}
	if s == "" {
		if !allowEmpty {
			d.errorf(rng, "Empty path", "The value of %q must not be empty.", name)
			return rng, false
		}
		*dst = ""
		return rng, true
	}
	*dst = d.resolve(s)
	return rng, true
}

// resolve makes p absolute relative to the configuration file's directory.
func (d *decoder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.base, p)
}

// single returns the first block of a type and reports any further ones.
func (d *decoder) single(blocks hcl.Blocks, typ string) *hcl.Block {
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != typ {
			continue
		}
		if first != nil {
			d.errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", typ),
				"Only one %s block is allowed; another one was declared at %s.", typ, at(first.DefRange))
			continue
		}
		first = b
	}
	return first
}

func (d *decoder) decodeFile(body hcl.Body) *Config {
	cfg := &Config{
		DataDir:  d.resolve(DefaultDataDir),
		RunDir:   d.resolve(DefaultRunDir),
		Warmup:   DefaultWarmup,
		Grace:    DefaultGrace,
		LogLevel: DefaultLogLevel,
		Repo:     RepoConfig{Dir: d.resolve(DefaultRepoDir), Backend: DefaultRepoBackend},
		Edge: EdgeConfig{
			Listen: DefaultEdgeListen, Admin: DefaultEdgeAdmin, LogInterval: DefaultLogInterval,
			Balancer: DefaultBalancer, ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout: DefaultIdleTimeout, UpstreamTimeout: DefaultUpstreamTimeout,
			MaxHeaderBytes: DefaultMaxHeaderBytes,
			// bounds on hostile clients and endpoints (edgelimits.go)
			RequestBodyTimeout: DefaultRequestBodyTimeout, WriteTimeout: DefaultWriteTimeout,
			StreamIdleTimeout: DefaultStreamIdleTimeout, MaxConnections: DefaultMaxConnections,
			MaxConnsPerEndpoint: DefaultMaxConnsPerEndpoint,
		},
		Control: ControlConfig{Socket: d.resolve(DefaultControlSocket)},
		Agents:  AgentsConfig{Count: DefaultAgentCount, HealthTimeout: DefaultHealthTimeout},
		Health:  HealthConfig{Plugin: DefaultHealthPlugin, Path: DefaultHealthPath, Timeout: DefaultCheckTimeout},
	}
	cfg.ProgressDeadline = DefaultProgressDeadline
	cfg.MinHealthy = DefaultMinHealthy
	c := d.content(body, topSchema)
	if c == nil {
		return cfg
	}
	a := c.Attributes
	d.path(a, "data_dir", &cfg.DataDir, false)
	d.path(a, "run_dir", &cfg.RunDir, false)
	d.duration(a, "warmup", &cfg.Warmup, false)
	d.duration(a, "grace", &cfg.Grace, false)
	d.duration(a, "progress_deadline", &cfg.ProgressDeadline, true)
	d.duration(a, "min_healthy", &cfg.MinHealthy, false)
	d.trustedKeys(a, cfg)
	d.logLevel(a, cfg)

	// Plugin blocks first: the other blocks refer to them by name.
	seenPlugins := map[string]hcl.Range{}
	for _, b := range c.Blocks {
		if b.Type == "plugin" {
			if p, ok := d.plugin(b, seenPlugins); ok {
				cfg.Plugins = append(cfg.Plugins, p)
			}
		}
	}
	if b := d.single(c.Blocks, "repo"); b != nil {
		d.repo(b, cfg)
	}
	if b := d.single(c.Blocks, "edge"); b != nil {
		d.edge(b, cfg)
	}
	if b := d.single(c.Blocks, "control"); b != nil {
		d.control(b, cfg)
	}
	agentsBlock := d.single(c.Blocks, "agents")
	if agentsBlock != nil {
		d.agents(agentsBlock, cfg)
	}
	if len(cfg.Agents.NodeIDs) == 0 && cfg.Agents.Count > 0 {
		for i := 1; i <= cfg.Agents.Count; i++ {
			cfg.Agents.NodeIDs = append(cfg.Agents.NodeIDs, fmt.Sprintf("n%d", i))
		}
	}
	if b := d.single(c.Blocks, "cluster"); b != nil { // cluster.go
		d.cluster(b, cfg)
		d.clusterNodeIDs(cfg, agentsBlock)
	}
	if b := d.single(c.Blocks, "health"); b != nil {
		d.health(b, cfg)
	}
	d.provisionBlock(d.single(c.Blocks, "provision"), cfg)
	seenApps := map[string]hcl.Range{}
	for _, b := range c.Blocks {
		if b.Type == "app" {
			if app, ok := d.app(b, cfg, seenApps); ok {
				cfg.Apps = append(cfg.Apps, app)
			}
		}
	}
	return cfg
}

func (d *decoder) trustedKeys(attrs hcl.Attributes, cfg *Config) {
	a, ok := attrs["trusted_keys"]
	if !ok {
		return
	}
	v, rng, ok := d.value(attrs, "trusted_keys", cty.List(cty.String))
	if !ok {
		return
	}
	// Point at the offending element when the list is written literally.
	elems, diags := hcl.ExprList(a.Expr)
	elemRange := func(i int) hcl.Range {
		if !diags.HasErrors() && i < len(elems) {
			return elems[i].Range()
		}
		return rng
	}
	for i, ev := range v.AsValueSlice() {
		if ev.IsNull() {
			d.errorf(elemRange(i), "Invalid trusted key", "Element %d of trusted_keys is null.", i)
			continue
		}
		s := strings.TrimSpace(ev.AsString())
		switch {
		case s == "":
			d.errorf(elemRange(i), "Invalid trusted key", "Element %d of trusted_keys is empty; write a key as \"ed25519:<base64>\" or the path of a .pub file.", i)
		case strings.HasPrefix(s, "ed25519:"):
			if _, err := spore.ParsePublicKey(s); err != nil {
				d.errorf(elemRange(i), "Invalid trusted key", "%s.", err)
				continue
			}
			cfg.TrustedKeys = append(cfg.TrustedKeys, s)
		default:
			p := d.resolve(s)
			st, err := os.Stat(p)
			if err != nil {
				d.errorf(elemRange(i), "Trusted key file not found",
					"%q is neither an \"ed25519:<base64>\" key nor a readable key file: %s.", s, err)
				continue
			}
			if !st.Mode().IsRegular() {
				d.errorf(elemRange(i), "Invalid trusted key", "%s is not a regular file.", p)
				continue
			}
			if _, err := spore.LoadTrustedKeys([]string{p}); err != nil {
				d.errorf(elemRange(i), "Invalid trusted key", "%s.", err)
				continue
			}
			cfg.TrustedKeys = append(cfg.TrustedKeys, p)
		}
	}
}

var logLevels = []string{"trace", "debug", "info", "warn", "error", "off"}

func (d *decoder) logLevel(attrs hcl.Attributes, cfg *Config) {
	var s string
	rng, ok := d.str(attrs, "log_level", &s)
	if !ok {
		return
	}
	s = strings.ToLower(strings.TrimSpace(s))
	for _, l := range logLevels {
		if s == l {
			cfg.LogLevel = s
			return
		}
	}
	d.errorf(rng, "Invalid log level", "log_level must be one of %s; got %q.", strings.Join(logLevels, ", "), s)
}

func (d *decoder) repo(b *hcl.Block, cfg *Config) {
	// Attributes other than dir and backend configure the backend plugin
	// in place (see repoBackendInline).
	c, rest, diags := b.Body.PartialContent(repoSchema)
	d.diags = append(d.diags, diags...)
	if c == nil {
		return
	}
	d.path(c.Attributes, "dir", &cfg.Repo.Dir, false)
	if rng, ok := d.str(c.Attributes, "backend", &cfg.Repo.Backend); ok && cfg.Repo.Backend != "" {
		d.repoBackendInline(cfg, rest, rng)
		d.pluginRef(cfg, KindRepo, cfg.Repo.Backend, rng)
	} else {
		d.repoBackendInline(cfg, rest, b.DefRange)
	}
}

func (d *decoder) edge(b *hcl.Block, cfg *Config) {
	c := d.content(b.Body, edgeSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	e := &cfg.Edge
	if rng, ok := d.str(a, "listen", &e.Listen); ok {
		d.listenAddr("listen", e.Listen, rng, false)
	}
	if rng, ok := d.str(a, "admin", &e.Admin); ok {
		d.listenAddr("admin", e.Admin, rng, true)
		if e.Admin != "" && e.Admin == e.Listen && !strings.HasSuffix(e.Admin, ":0") {
			d.errorf(rng, "Address used twice", "The admin listener (/metrics) cannot share the edge's address %q; give it its own port.", e.Admin)
		}
	}
	d.duration(a, "log_interval", &e.LogInterval, true)
	if rng, ok := d.str(a, "balancer", &e.Balancer); ok {
		d.pluginRef(cfg, KindBalancer, e.Balancer, rng)
	}
	d.duration(a, "read_header_timeout", &e.ReadHeaderTimeout, true)
	d.duration(a, "idle_timeout", &e.IdleTimeout, true)
	d.duration(a, "upstream_timeout", &e.UpstreamTimeout, true)
	if rng, ok := d.integer(a, "max_header_bytes", &e.MaxHeaderBytes); ok {
		if e.MaxHeaderBytes < 1024 || e.MaxHeaderBytes > 16<<20 {
			d.errorf(rng, "Invalid header size limit", "max_header_bytes must be between 1024 and %d; got %d.", 16<<20, e.MaxHeaderBytes)
		}
	}
	d.edgeLimits(a, e)
}

func (d *decoder) control(b *hcl.Block, cfg *Config) {
	c := d.content(b.Body, controlSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	ctl := &cfg.Control
	d.path(a, "socket", &ctl.Socket, true)
	listenRange, hasListen := d.str(a, "listen", &ctl.Listen)
	public := false
	if hasListen && ctl.Listen != "" {
		public = d.listenAddr("listen", ctl.Listen, listenRange, false) && !IsLoopback(ctl.Listen)
	}
	tokenRange, hasToken := d.str(a, "token", &ctl.Token)
	switch {
	case ctl.Listen != "" && ctl.Token == "":
		detail := "The control API can start arbitrary binaries; a TCP listener requires a bearer token (for example token = env(\"MESH_TOKEN\"))."
		if public {
			detail = fmt.Sprintf("control listen %q is not a loopback address: the control API can start arbitrary binaries, so a listener off loopback is refused without a bearer token (for example token = env(\"MESH_TOKEN\")).", ctl.Listen)
		}
		if hasToken {
			detail += " The token expression evaluated to an empty string; is the environment variable set?"
		}
		d.errorf(listenRange, "Control listener without token", "%s", detail)
	case public:
		// Agents on other hosts fetch spores here (the http repo backend).
		d.warnf(listenRange, "Control listener off loopback", "control listen %q is reachable from other hosts. Every request must carry the bearer token, but the API serves plain HTTP: the token and the spores cross the network in clear text, so keep this address on a private network (or behind a TLS proxy you run).", ctl.Listen)
	}
	if hasToken && ctl.Token != "" && len(ctl.Token) < 16 {
		d.warnf(tokenRange, "Short control token", "The control token has %d characters; use at least 16 random ones.", len(ctl.Token))
	}
	if ctl.Socket == "" && ctl.Listen == "" {
		d.warnf(b.DefRange, "Control API disabled", "Neither socket nor listen is set: mesh deploy, status and reload cannot reach this mesh.")
	}
}

// listenAddr checks a host:port listen address and reports whether it is
// well formed (an allowed empty address is not).
func (d *decoder) listenAddr(name, addr string, rng hcl.Range, allowEmpty bool) bool {
	if addr == "" {
		if !allowEmpty {
			d.errorf(rng, "Invalid listen address", "%s must not be empty; write host:port such as \"127.0.0.1:8080\".", name)
		}
		return false
	}
	if err := checkHostPort(addr); err != nil {
		d.errorf(rng, "Invalid listen address", "%s %q: %s; write host:port such as \"127.0.0.1:8080\".", name, addr, err)
		return false
	}
	return true
}

func (d *decoder) agents(b *hcl.Block, cfg *Config) {
	c := d.content(b.Body, agentsSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	countRange, hasCount := d.integer(a, "count", &cfg.Agents.Count)
	d.agentsDeclared = hasCount
	if hasCount && (cfg.Agents.Count < 1 || cfg.Agents.Count > maxAgents) {
		d.errorf(countRange, "Invalid agent count", "count must be between 1 and %d; got %d.", maxAgents, cfg.Agents.Count)
		cfg.Agents.Count = 0
	}
	d.duration(a, "health_timeout", &cfg.Agents.HealthTimeout, true)
	d.agentsLimits(a, cfg)

	var nodes []*hcl.Block
	for _, nb := range c.Blocks {
		if nb.Type == "node" {
			nodes = append(nodes, nb)
		}
	}
	if len(nodes) == 0 {
		return
	}
	d.agentsDeclared = true
	if hasCount {
		d.errorf(countRange, "Both count and node blocks",
			"Declare agents either with count or with node blocks, not both; node blocks start at %s.", at(nodes[0].DefRange))
		return
	}
	seen := map[string]hcl.Range{}
	var ids []string
	for _, nb := range nodes {
		d.content(nb.Body, nodeSchema)
		id := nb.Labels[0]
		lr := nb.LabelRanges[0]
		if !validName(id) {
			d.errorf(lr, "Invalid node ID", "Node ID %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 63 characters).", id)
			continue
		}
		if prev, dup := seen[id]; dup {
			d.errorf(lr, "Duplicate node ID", "Node %q is already declared at %s.", id, at(prev))
			continue
		}
		seen[id] = lr
		ids = append(ids, id)
	}
	cfg.Agents.NodeIDs = ids
	cfg.Agents.Count = len(ids)
}

const maxAgents = 256

func (d *decoder) health(b *hcl.Block, cfg *Config) {
	c := d.content(b.Body, healthSchema)
	if c == nil {
		return
	}
	a := c.Attributes
	if rng, ok := d.str(a, "plugin", &cfg.Health.Plugin); ok {
		d.pluginRef(cfg, KindHealth, cfg.Health.Plugin, rng)
	}
	if rng, ok := d.str(a, "path", &cfg.Health.Path); ok {
		d.httpPath("path", cfg.Health.Path, rng)
	}
	d.duration(a, "timeout", &cfg.Health.Timeout, true)
}

func (d *decoder) httpPath(name, p string, rng hcl.Range) {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n?#") {
		d.errorf(rng, "Invalid HTTP path", "%s must be an absolute URL path such as \"/health\"; got %q.", name, p)
	}
}

// pluginRef checks that name refers to a bundled plugin of the kind or to a
// plugin block declared in the file.
func (d *decoder) pluginRef(cfg *Config, kind, name string, rng hcl.Range) {
	if name == "" {
		d.errorf(rng, fmt.Sprintf("Unknown %s plugin", kind), "The %s plugin name must not be empty.", kind)
		return
	}
	if IsBundled(kind, name) {
		return
	}
	if _, ok := cfg.Plugin(kind, name); ok {
		return
	}
	d.errorf(rng, fmt.Sprintf("Unknown %s plugin", kind),
		"No %s plugin named %q: the bundled ones are %s; declare others with a plugin %q %q { command = ... } block.",
		kind, name, bundledNames(kind), kind, name)
}

func (d *decoder) plugin(b *hcl.Block, seen map[string]hcl.Range) (PluginBlock, bool) {
	p := PluginBlock{Kind: b.Labels[0], Name: b.Labels[1], DeclRange: b.DefRange}
	ok := true
	if !pluginKinds[p.Kind] {
		d.errorf(b.LabelRanges[0], "Invalid plugin kind", "Plugin kind must be %q, %q, %q or %q; got %q.", KindRepo, KindBalancer, KindHealth, KindHosting, p.Kind)
		ok = false
	}
	if !validName(p.Name) {
		d.errorf(b.LabelRanges[1], "Invalid plugin name", "Plugin name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 63 characters).", p.Name)
		ok = false
	}
	key := p.Kind + "\x00" + p.Name
	if prev, dup := seen[key]; dup && ok {
		d.errorf(b.LabelRanges[1], "Duplicate plugin block", "A %s plugin named %q is already declared at %s.", p.Kind, p.Name, at(prev))
		ok = false
	} else if ok {
		seen[key] = b.DefRange
	}

	c := d.content(b.Body, pluginSchema)
	if c == nil {
		return p, false
	}
	_, hasCmd := d.path(c.Attributes, "command", &p.Command, false)
	var sum string
	if rng, has := d.str(c.Attributes, "sha256", &sum); has {
		hexSum, err := parseSHA256(sum)
		switch {
		case err != nil:
			d.errorf(rng, "Invalid sha256", "%s.", err)
			ok = false
		case !hasCmd:
			d.errorf(rng, "sha256 without command", "sha256 pins the executable named by command; bundled plugins need neither.")
			ok = false
		default:
			p.SHA256 = hexSum
		}
	}
	if !hasCmd && ok && !IsBundled(p.Kind, p.Name) {
		d.errorf(b.LabelRanges[1], "Missing plugin command",
			"%q is not a bundled %s plugin (those are %s), so the block needs command = \"path/to/executable\".",
			p.Name, p.Kind, bundledNames(p.Kind))
		ok = false
	}
	var cfgBlock *hcl.Block
	for _, cb := range c.Blocks {
		if cfgBlock != nil {
			d.errorf(cb.DefRange, "Duplicate config block", "Only one config block is allowed; another one was declared at %s.", at(cfgBlock.DefRange))
			ok = false
			continue
		}
		cfgBlock = cb
	}
	if cfgBlock != nil {
		p.Config = cfgBlock.Body
	}
	return p, ok
}

func (d *decoder) app(b *hcl.Block, cfg *Config, seen map[string]hcl.Range) (AppConfig, bool) {
	app := AppConfig{
		Name:        b.Labels[0],
		Min:         DefaultAppMin,
		Restart:     DefaultRestart,
		StripPrefix: DefaultStripPrefix,
		Balancer:    cfg.Edge.Balancer,
		HealthPath:  cfg.Health.Path,
		DeclRange:   b.DefRange,
	}
	before := len(d.diags.Errs())
	if !validName(app.Name) {
		d.errorf(b.LabelRanges[0], "Invalid app name", "App name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-' (at most 63 characters): it is the first segment of the URL path.", app.Name)
	} else if prev, dup := seen[app.Name]; dup {
		d.errorf(b.LabelRanges[0], "Duplicate app block", "An app named %q is already declared at %s.", app.Name, at(prev))
	} else {
		seen[app.Name] = b.DefRange
	}

	c := d.content(b.Body, appSchema)
	if c == nil {
		return app, false
	}
	a := c.Attributes

	digestRange, hasDigest := d.str(a, "digest", &app.Digest)
	if hasDigest {
		if norm, err := parseDigest(app.Digest); err != nil {
			d.errorf(digestRange, "Invalid digest", "%s.", err)
		} else {
			app.Digest = norm
		}
	}
	sporeRange, hasSpore := d.path(a, "spore", &app.Spore, false)
	if hasSpore {
		if st, err := os.Stat(app.Spore); err != nil {
			d.errorf(sporeRange, "Spore file not found", "%s.", err)
		} else if !st.Mode().IsRegular() {
			d.errorf(sporeRange, "Invalid spore file", "%s is not a regular file.", app.Spore)
		}
	}
	switch {
	case hasDigest && hasSpore:
		d.errorf(sporeRange, "Both digest and spore", "App %q sets digest (%s) and spore; set exactly one.", app.Name, at(digestRange))
	case a["digest"] == nil && a["spore"] == nil:
		d.errorf(b.DefRange, "Missing digest or spore", "App %q needs digest = \"sha256:...\" (a published spore) or spore = \"path/to/file.spore\" (published at start).", app.Name)
	}

	minRange, _ := d.nonNegative(a, "min", &app.Min)
	maxRange, hasMax := d.nonNegative(a, "max", &app.Max)
	if !hasMax {
		app.Max = app.Min
	}
	if app.Min > app.Max {
		subject := maxRange
		if !hasMax {
			subject = minRange
		}
		d.errorf(subject, "Invalid instance range", "min (%d) is greater than max (%d).", app.Min, app.Max)
	}
	if rng, ok := d.nonNegative(a, "port", &app.Port); ok && app.Port > 65535 {
		d.errorf(rng, "Invalid port", "port must be between 0 (any free port) and 65535; got %d.", app.Port)
	}
	if rng, ok := d.str(a, "restart", &app.Restart); ok {
		switch app.Restart {
		case RestartNever, RestartOnFailure, RestartAlways:
		default:
			d.errorf(rng, "Invalid restart policy", "restart must be %q, %q or %q; got %q.", RestartNever, RestartOnFailure, RestartAlways, app.Restart)
		}
	}
	d.boolean(a, "strip_prefix", &app.StripPrefix)
	if rng, ok := d.str(a, "balancer", &app.Balancer); ok {
		d.pluginRef(cfg, KindBalancer, app.Balancer, rng)
	}
	if rng, ok := d.str(a, "health_path", &app.HealthPath); ok {
		d.httpPath("health_path", app.HealthPath, rng)
	}
	app.ProgressDeadline = cfg.ProgressDeadline
	d.duration(a, "progress_deadline", &app.ProgressDeadline, true)
	app.MinHealthy = cfg.MinHealthy
	d.duration(a, "min_healthy", &app.MinHealthy, false)
	if app.MinHealthy >= app.ProgressDeadline && app.ProgressDeadline > 0 {
		rng := b.DefRange
		if at, ok := a["min_healthy"]; ok {
			rng = at.Expr.Range()
		}
		d.errorf(rng, "min_healthy not below progress_deadline",
			"App %q: every rollout would miss its progress_deadline (%s) while its instances prove themselves for min_healthy (%s); make min_healthy shorter.", app.Name, app.ProgressDeadline, app.MinHealthy)
	}

	d.appLogs(c.Blocks, &app)
	var budgetBlock *hcl.Block
	for _, bb := range c.Blocks {
		if bb.Type != "budget" {
			continue
		}
		if budgetBlock != nil {
			d.errorf(bb.DefRange, "Duplicate budget block", "Only one budget block is allowed; another one was declared at %s.", at(budgetBlock.DefRange))
			continue
		}
		budgetBlock = bb
	}
	if budgetBlock != nil {
		bc := d.content(budgetBlock.Body, budgetSchema)
		if bc != nil {
			app.Budget = &BudgetConfig{}
			rng, ok := d.nonNegative(bc.Attributes, "max_instances", &app.Budget.MaxInstances)
			d.nonNegative(bc.Attributes, "cpu_milli", &app.Budget.CPUMilli)
			d.nonNegative(bc.Attributes, "memory_mb", &app.Budget.MemoryMB)
			if ok && app.Budget.MaxInstances > 0 && app.Budget.MaxInstances < app.Min {
				d.warnf(rng, "Budget below min", "App %q wants at least %d instances but its budget allows %d; the rest will be refused.", app.Name, app.Min, app.Budget.MaxInstances)
			}
		}
	}
	if len(d.diags.Errs()) != before {
		return app, false
	}
	app.Hash = hashApp(app)
	return app, true
}

// sortDiagnostics orders diagnostics by their position in the file, those
// without a position first, so output reads top to bottom.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

// at names a position in the same file for a diagnostic's detail.
func at(r hcl.Range) string { return fmt.Sprintf("line %d", r.Start.Line) }

func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}
