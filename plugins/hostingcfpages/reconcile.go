package hostingcfpages

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/pages"

	"github.com/mycelium-mesh/mesh/sdk"
)

// status runs an SDK call and returns the HTTP status of its last answer
// (0 when none came), so "not found" and "already exists" can be told apart
// from failures.
func status(call func(opt option.RequestOption) error) (int, error) {
	var resp *http.Response
	err := call(option.WithResponseInto(&resp))
	if resp == nil {
		return 0, err
	}
	return resp.StatusCode, err
}

func projectVersion(c sdk.SiteConfig, branch, cmd, dir string) string {
	v := "branch=" + branch
	if _, ok := wantBuild(c); ok {
		v += " build=" + cmd + " dir=" + dir
	}
	return v
}

func dnsKey(name, typ string) string { return strings.ToLower(name) + " " + strings.ToUpper(typ) }

// Observe reads the project, its domains, its current deployment's content
// digest and, with a dns block, the zone's records of interest.
func (b *backend) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	var out []sdk.HostingResource
	projects := pages.NewProjectService(t.opts...)
	var p *pages.Project
	code, err := status(func(o option.RequestOption) error {
		var e error
		p, e = projects.Get(ctx, t.project, pages.ProjectGetParams{AccountID: t.acct.AccountID}, o)
		return e
	})
	switch {
	case code == http.StatusNotFound:
		p = nil
	case err != nil:
		return nil, fmt.Errorf("get project %s: %w", t.project, err)
	}
	if p != nil {
		out = append(out, sdk.HostingResource{Kind: KindProject, Key: t.project,
			Version: projectVersion(req.Site, p.ProductionBranch, p.BuildConfig.BuildCommand, p.BuildConfig.DestinationDir)})
		if d := deployedDigest(p); d != "" {
			out = append(out, sdk.HostingResource{Kind: KindDeployment, Key: t.project, Version: d})
		}
		list, err := pages.NewProjectDomainService(t.opts...).List(ctx, t.project, pages.ProjectDomainListParams{AccountID: t.acct.AccountID})
		if err != nil {
			return nil, fmt.Errorf("list domains of %s: %w", t.project, err)
		}
		for _, d := range list.Result {
			out = append(out, sdk.HostingResource{Kind: KindDomain, Key: strings.ToLower(d.Name), Version: string(d.Status)})
		}
	}
	recs, err := b.observeDNS(ctx, t, req)
	if err != nil {
		return nil, err
	}
	return append(out, recs...), nil
}

// deployedDigest reads the content digest this backend recorded in the
// production deployment's commit message.
func deployedDigest(p *pages.Project) string {
	for _, d := range []pages.Deployment{p.CanonicalDeployment, p.LatestDeployment} {
		msg := d.DeploymentTrigger.Metadata.CommitMessage
		if strings.HasPrefix(msg, digestMarkerPre) {
			return strings.TrimPrefix(msg, digestMarkerPre)
		}
	}
	return ""
}

// wantRecord is one record the site asks for.
type wantRecord struct {
	Name, Type, Content string
	TTL                 float64
}

// desiredDNS lists the records a site asks for, keyed by (name, type).
func desiredDNS(t *target, c sdk.SiteConfig) (map[string]wantRecord, error) {
	if c.DNS == nil || c.DNS.Provider != "cloudflarePages" {
		return nil, nil
	}
	if c.DNS.ZoneID == "" {
		return nil, fmt.Errorf("dns.zoneId is required to manage records in Cloudflare")
	}
	want := map[string]wantRecord{}
	names := map[string]bool{}
	for i, r := range c.DNS.Records {
		name := strings.ToLower(strings.TrimSuffix(r.Name, "."))
		if !strings.Contains(name, ".") {
			return nil, fmt.Errorf("dns.records[%d].name %q: give the fully qualified name (the zone is known only by its id)", i, r.Name)
		}
		ttl := float64(r.TTL)
		if ttl == 0 {
			ttl = 1 // automatic
		}
		k := dnsKey(name, r.Type)
		if _, dup := want[k]; dup {
			return nil, fmt.Errorf("dns.records[%d]: %s given twice", i, k)
		}
		want[k] = wantRecord{Name: name, Type: strings.ToUpper(r.Type), Content: r.Value, TTL: ttl}
		names[name] = true
	}
	if t.set.cnames {
		for _, d := range c.Domains.All() {
			if !names[d] {
				want[dnsKey(d, "CNAME")] = wantRecord{Name: d, Type: "CNAME", Content: t.project + ".pages.dev", TTL: 1}
			}
		}
	}
	return want, nil
}

// recordVersion is an observed record's version: its id, whether this
// backend created it (its comment is the marker set at creation, which
// edits leave alone), its value and TTL.
func recordVersion(id, comment, content string, ttl float64) string {
	mine := "theirs"
	if strings.HasPrefix(comment, createdMarker) {
		mine = "ours"
	}
	return id + "|" + mine + "|" + content + "|" + strconv.FormatFloat(ttl, 'f', -1, 64)
}

// createdMarker starts the comment of every record this backend creates.
const createdMarker = "created by mesh provision"

func recordIsOurs(version string) bool {
	parts := strings.SplitN(version, "|", 3)
	return len(parts) == 3 && parts[1] == "ours"
}

func (b *backend) observeDNS(ctx context.Context, t *target, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	want, err := desiredDNS(t, req.Site)
	if err != nil || want == nil {
		return nil, err
	}
	owned := map[string]bool{}
	for _, r := range req.Owned {
		if r.Kind == KindDNS {
			owned[r.Key] = true
		}
	}
	var out []sdk.HostingResource
	var params dns.RecordListParams
	params.ZoneID.Value, params.ZoneID.Present = req.Site.DNS.ZoneID, true
	pager := dns.NewRecordService(t.opts...).ListAutoPaging(ctx, params)
	for pager.Next() {
		r := pager.Current()
		k := dnsKey(r.Name, string(r.Type))
		if _, ok := want[k]; ok || owned[k] {
			out = append(out, sdk.HostingResource{Kind: KindDNS, Key: k, Version: recordVersion(r.ID, r.Comment, r.Content, float64(r.TTL))})
		}
	}
	if err := pager.Err(); err != nil {
		return nil, fmt.Errorf("list dns records of zone %s: %w", req.Site.DNS.ZoneID, err)
	}
	return out, nil
}

// Plan compares the site with what Cloudflare has: project, domains,
// deployment, then DNS records.
func (b *backend) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	have := map[string]map[string]string{}
	for _, r := range actual {
		if have[r.Kind] == nil {
			have[r.Kind] = map[string]string{}
		}
		have[r.Kind][r.Key] = r.Version
	}
	owned := map[string]map[string]bool{}
	for _, r := range req.Owned {
		if owned[r.Kind] == nil {
			owned[r.Kind] = map[string]bool{}
		}
		owned[r.Kind][r.Key] = true
	}
	var acts []sdk.HostingAction
	c := req.Site

	bc, _ := wantBuild(c)
	wantProject := projectVersion(c, t.branch, bc.Command, bc.Dir)
	if v, ok := have[KindProject][t.project]; !ok {
		acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: KindProject, Key: t.project, Detail: wantProject})
	} else if v != wantProject {
		acts = append(acts, sdk.HostingAction{Op: sdk.OpUpdate, Kind: KindProject, Key: t.project, Detail: wantProject})
	}

	wantDomains := map[string]bool{}
	for _, d := range c.Domains.All() {
		wantDomains[d] = true
		if _, ok := have[KindDomain][d]; !ok {
			acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: KindDomain, Key: d})
		}
	}
	if t.set.pruneDomains {
		var gone []string
		for d := range have[KindDomain] {
			if !wantDomains[d] && owned[KindDomain][d] {
				gone = append(gone, d)
			}
		}
		sort.Strings(gone)
		for _, d := range gone {
			acts = append(acts, sdk.HostingAction{Op: sdk.OpDelete, Kind: KindDomain, Key: d})
		}
	}

	if prebuilt(c) {
		dir, err := t.siteDir(c)
		if err != nil {
			return nil, err
		}
		as, err := siteAssets(dir)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(as, func(a asset) bool { return a.Name == "index.html" }) {
			return nil, fmt.Errorf("site %s has no index.html", c.Site.ID)
		}
		digest := contentDigest(as)
		if v, ok := have[KindDeployment][t.project]; !ok || v != digest {
			acts = append(acts, sdk.HostingAction{Op: opFor(ok), Kind: KindDeployment, Key: t.project, Detail: digest})
		}
	}

	want, err := desiredDNS(t, c)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := want[k]
		v, ok := have[KindDNS][k]
		switch {
		case !ok:
			acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: KindDNS, Key: k, Detail: w.Content})
		case !strings.HasSuffix(v, "|"+w.Content+"|"+strconv.FormatFloat(w.TTL, 'f', -1, 64)):
			acts = append(acts, sdk.HostingAction{Op: sdk.OpUpdate, Kind: KindDNS, Key: k, Detail: recordID(v) + " " + w.Content})
		}
	}
	if t.set.pruneDNS {
		var gone []string
		for k := range have[KindDNS] {
			// Owned is not enough: a record someone else made and this
			// backend only edited is recorded as touched, never as created.
			if _, keep := want[k]; !keep && owned[KindDNS][k] && recordIsOurs(have[KindDNS][k]) {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			acts = append(acts, sdk.HostingAction{Op: sdk.OpDelete, Kind: KindDNS, Key: k, Detail: recordID(have[KindDNS][k])})
		}
	}
	return acts, nil
}

func recordID(version string) string { id, _, _ := strings.Cut(version, "|"); return id }

func opFor(exists bool) string {
	if exists {
		return sdk.OpUpdate
	}
	return sdk.OpCreate
}

// Apply performs the plan in order, reporting each action as it succeeds.
func (b *backend) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	t, err := b.target(req)
	if err != nil {
		return err
	}
	for _, a := range actions {
		var err error
		switch a.Kind {
		case KindProject:
			err = t.ensureProject(ctx, req.Site, a)
		case KindDomain:
			err = t.domain(ctx, a)
		case KindDeployment:
			a.Detail, err = t.deploy(ctx, req.Site)
		case KindDNS:
			err = t.record(ctx, req.Site, a)
		default:
			err = fmt.Errorf("unknown action %s %s", a.Op, a.Kind)
		}
		if err != nil {
			return err
		}
		done(a)
	}
	return nil
}

func (t *target) ensureProject(ctx context.Context, c sdk.SiteConfig, a sdk.HostingAction) error {
	projects := pages.NewProjectService(t.opts...)
	bc, withBuild := wantBuild(c)
	if a.Op == sdk.OpCreate {
		var p pages.ProjectNewParams
		p.AccountID = t.acct.AccountID
		p.Name.Value, p.Name.Present = t.project, true
		p.ProductionBranch.Value, p.ProductionBranch.Present = t.branch, true
		if withBuild {
			var cfg pages.ProjectNewParamsBuildConfig
			cfg.BuildCommand.Value, cfg.BuildCommand.Present = bc.Command, true
			cfg.DestinationDir.Value, cfg.DestinationDir.Present = bc.Dir, true
			p.BuildConfig.Value, p.BuildConfig.Present = cfg, true
		}
		code, err := status(func(o option.RequestOption) error { _, e := projects.New(ctx, p, o); return e })
		if err != nil && code != http.StatusConflict {
			return fmt.Errorf("create project %s: %w", t.project, err)
		}
		if err == nil {
			return nil
		}
		// It exists already (made between observe and apply): edit it.
	}
	var p pages.ProjectEditParams
	p.AccountID = t.acct.AccountID
	p.ProductionBranch.Value, p.ProductionBranch.Present = t.branch, true
	if withBuild {
		var cfg pages.ProjectEditParamsBuildConfig
		cfg.BuildCommand.Value, cfg.BuildCommand.Present = bc.Command, true
		cfg.DestinationDir.Value, cfg.DestinationDir.Present = bc.Dir, true
		p.BuildConfig.Value, p.BuildConfig.Present = cfg, true
	}
	if _, err := projects.Edit(ctx, t.project, p); err != nil {
		return fmt.Errorf("edit project %s: %w", t.project, err)
	}
	return nil
}

func (t *target) domain(ctx context.Context, a sdk.HostingAction) error {
	domains := pages.NewProjectDomainService(t.opts...)
	if a.Op == sdk.OpDelete {
		code, err := status(func(o option.RequestOption) error {
			_, e := domains.Delete(ctx, t.project, a.Key, pages.ProjectDomainDeleteParams{AccountID: t.acct.AccountID}, o)
			return e
		})
		if err != nil && code != http.StatusNotFound {
			return fmt.Errorf("remove domain %s from %s: %w", a.Key, t.project, err)
		}
		return nil
	}
	var p pages.ProjectDomainNewParams
	p.AccountID = t.acct.AccountID
	p.Name.Value, p.Name.Present = a.Key, true
	code, err := status(func(o option.RequestOption) error { _, e := domains.New(ctx, t.project, p, o); return e })
	if err != nil && code != http.StatusConflict {
		return fmt.Errorf("add domain %s to %s: %w", a.Key, t.project, err)
	}
	return nil
}

// deploy uploads what Cloudflare lacks and creates the deployment; it
// returns the action's detail (digest and upload count).
func (t *target) deploy(ctx context.Context, c sdk.SiteConfig) (string, error) {
	dir, err := t.siteDir(c)
	if err != nil {
		return "", err
	}
	as, err := siteAssets(dir)
	if err != nil {
		return "", err
	}
	uploaded, err := t.assets.uploadMissing(ctx, as, t.set.concurrency)
	if err != nil {
		return "", fmt.Errorf("deploy %s: %w", t.project, err)
	}
	m, err := json.Marshal(manifest(as))
	if err != nil {
		return "", fmt.Errorf("deploy %s: encode manifest: %w", t.project, err)
	}
	digest := contentDigest(as)
	var p pages.ProjectDeploymentNewParams
	p.AccountID = t.acct.AccountID
	p.Manifest.Value, p.Manifest.Present = string(m), true
	p.Branch.Value, p.Branch.Present = t.branch, true
	p.CommitMessage.Value, p.CommitMessage.Present = digestMarkerPre+digest, true
	if _, err := pages.NewProjectDeploymentService(t.opts...).New(ctx, t.project, p); err != nil {
		return "", fmt.Errorf("create deployment of %s: %w", t.project, err)
	}
	return fmt.Sprintf("%s (%d files, %d uploaded)", digest, len(as), uploaded), nil
}

func (t *target) record(ctx context.Context, c sdk.SiteConfig, a sdk.HostingAction) error {
	records := dns.NewRecordService(t.opts...)
	zone := c.DNS.ZoneID
	if a.Op == sdk.OpDelete {
		var p dns.RecordDeleteParams
		p.ZoneID.Value, p.ZoneID.Present = zone, true
		code, err := status(func(o option.RequestOption) error { _, e := records.Delete(ctx, a.Detail, p, o); return e })
		if err != nil && code != http.StatusNotFound {
			return fmt.Errorf("delete dns record %s: %w", a.Key, err)
		}
		return nil
	}
	want, err := desiredDNS(t, c)
	if err != nil {
		return err
	}
	w, ok := want[a.Key]
	if !ok {
		return fmt.Errorf("dns record %s left the site since the plan", a.Key)
	}
	comment := createdMarker + " for site " + c.Site.ID
	if a.Op == sdk.OpCreate {
		var body dns.RecordNewParamsBody
		body.Name.Value, body.Name.Present = w.Name, true
		body.Type.Value, body.Type.Present = dns.RecordNewParamsBodyType(w.Type), true
		body.Content.Value, body.Content.Present = w.Content, true
		body.TTL.Value, body.TTL.Present = dns.TTL(w.TTL), true
		body.Comment.Value, body.Comment.Present = comment, true
		var p dns.RecordNewParams
		p.ZoneID.Value, p.ZoneID.Present = zone, true
		p.Body = body
		if _, err := records.New(ctx, p); err != nil {
			return fmt.Errorf("create dns record %s: %w", a.Key, err)
		}
		return nil
	}
	id, _, _ := strings.Cut(a.Detail, " ")
	var body dns.RecordEditParamsBody
	body.Name.Value, body.Name.Present = w.Name, true
	body.Type.Value, body.Type.Present = dns.RecordEditParamsBodyType(w.Type), true
	body.Content.Value, body.Content.Present = w.Content, true
	body.TTL.Value, body.TTL.Present = dns.TTL(w.TTL), true
	var p dns.RecordEditParams
	p.ZoneID.Value, p.ZoneID.Present = zone, true
	p.Body = body
	if _, err := records.Edit(ctx, id, p); err != nil {
		return fmt.Errorf("update dns record %s: %w", a.Key, err)
	}
	return nil
}
