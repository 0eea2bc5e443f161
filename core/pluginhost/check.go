package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/hclconfig"
	"github.com/mycelium-mesh/mesh/sdk/pluginclient"
)

// Check is the one validation of a plugin block, shared by `mesh validate`
// and `mesh plugins`. It launches the plugin (bundled or external), checks
// its handshake, kind and API version, decodes its config block against the
// schema the plugin declares, asks the plugin to validate the decoded block
// without applying it, and stops the plugin again.
//
// Every finding is a diagnostic: errors for what `mesh run` would refuse
// (the plugin does not start, the block does not match the schema, the
// plugin rejects a value), and a warning when the plugin itself could not
// look at the block (it does not implement sdk.ConfigValidator), so that
// an operator is never told a block is valid when nobody checked it. err,
// when not nil, is why the plugin could not be started or spoken to; it
// wraps this package's sentinel errors and is also in diags.
//
// A spec with neither Config nor DeclRange stands for no block at all (a
// bundled plugin that is listed but not configured): only its start is
// checked.
func (h *Host) Check(ctx context.Context, spec Spec) (info sdk.Info, diags hcl.Diagnostics, err error) {
	p, err := h.prepare(spec)
	if err != nil {
		return sdk.Info{}, blockDiags(spec, "Plugin cannot be started", unplaced(spec, err)+"; its config block was not checked."), err
	}
	block := spec.Config != nil || spec.DeclRange.Filename != ""
	if p.bundled && block {
		// A bundled schema is known without launching: report config
		// mistakes even when the plugin cannot be started here.
		if _, diags = p.decodeDiags(p.schema); diags.HasErrors() {
			return sdk.Info{}, diags, nil
		}
	}
	inst, err := p.launch(ctx)
	if err != nil {
		return sdk.Info{}, blockDiags(spec, "Plugin did not start", unplaced(spec, err)+"; its config block was not checked by the plugin."), err
	}
	defer inst.kill()
	if !block {
		return inst.info, nil, nil
	}
	cfg, diags := p.decodeDiags(inst.schema)
	if diags.HasErrors() {
		return inst.info, diags, nil
	}
	remote, ok := inst.shim.(pluginclient.Remote)
	if !ok {
		return inst.info, blockDiags(spec, "Plugin cannot validate", fmt.Sprintf("Client %T cannot ask the plugin.", inst.shim)), nil
	}
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	verr := remote.ValidateConfig(cctx, cfg)
	switch {
	case verr == nil:
	case errors.Is(verr, pluginclient.ErrNotValidated):
		d := blockDiags(spec, "Config checked against the schema only",
			fmt.Sprintf("The %s plugin %q (version %s) does not check a configuration without applying it, so values it would refuse show only when mesh runs: %v.",
				p.kind, p.name, orDash(inst.info.Version), verr))
		d[0].Severity = hcl.DiagWarning
		diags = append(diags, d...)
	default:
		if inst.client.Exited() || isTransport(verr) {
			return inst.info, blockDiags(spec, "Plugin failed while validating", fmt.Sprintf("%v.", verr)), fmt.Errorf("%s: %w", p.where(), verr)
		}
		diags = append(diags, p.rejection(verr)...)
	}
	return inst.info, diags, nil
}

// unplaced is err's text without the plugin's "file:line: kind plugin
// "name": " prefix, for a diagnostic that already shows the block it is
// about: the prefix would say the same thing twice.
func unplaced(spec Spec, err error) string {
	return strings.TrimPrefix(err.Error(), specWhere(spec.Kind, spec.Name, spec.DeclRange)+": ")
}

// blockDiags is one error diagnostic on a plugin block's declaration.
func blockDiags(spec Spec, summary, detail string) hcl.Diagnostics {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	if spec.DeclRange.Filename != "" {
		r := spec.DeclRange
		d.Subject = &r
	}
	return hcl.Diagnostics{d}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rejection is the diagnostic of a configuration the plugin refused. An
// sdk.AttributeError points at that attribute's value in mesh.hcl, nested
// blocks included (or at the block when the attribute was left to its
// default); any other error at the plugin block.
func (p *Plugin) rejection(err error) hcl.Diagnostics {
	var ae *sdk.AttributeError
	if !errors.As(err, &ae) {
		return blockDiags(p.spec, "Plugin rejects its configuration",
			fmt.Sprintf("The plugin refuses this block: %v.", err))
	}
	summary := fmt.Sprintf("Invalid value for %q", ae.Attribute)
	detail := fmt.Sprintf("The plugin refuses this value: %v.", ae.Err)
	if rng, ok := hclconfig.Locate(p.spec.Config, ae.Attribute); ok {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng}}
	}
	return blockDiags(p.spec, summary, fmt.Sprintf("The plugin refuses %s, left to its default: %v.", ae.Attribute, ae.Err))
}
