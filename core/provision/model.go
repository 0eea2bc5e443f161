package provision

import (
	"fmt"
	"strings"
)

// Config is one decoded SporeConfig: what a site should look like. Optional
// parts are pointers, nil when the message did not carry them, so that an
// absent part is never mistaken for one whose fields are all zero.
type Config struct {
	Site     Site      `json:"site"`
	Repo     *Repo     `json:"repo,omitempty"`
	Build    *Build    `json:"build,omitempty"`
	Domains  *Domains  `json:"domains,omitempty"`
	Hosting  Hosting   `json:"hosting"`
	DNS      *DNS      `json:"dns,omitempty"`
	Purchase *Purchase `json:"purchase,omitempty"`
}

// Site names the site. ID is a DNS-safe label and the site's identity: two
// messages with the same ID describe the same site.
type Site struct {
	ID    string   `json:"id"`
	Title string   `json:"title,omitempty"`
	Kind  SiteKind `json:"kind"`
}

// Repo is where the site's sources live.
type Repo struct {
	Provider      RepoProvider `json:"provider"`
	Slug          string       `json:"slug,omitempty"`
	DefaultBranch string       `json:"defaultBranch,omitempty"`
}

// Build says how the site's files are produced. OutputDir is a relative,
// slash-separated path that never leaves the directory it is resolved in.
type Build struct {
	Type      BuildType   `json:"type"`
	OutputDir string      `json:"outputDir,omitempty"`
	Framework CfFramework `json:"framework"`
}

// Domains are the host names the site answers on, lower-cased.
type Domains struct {
	Primary string   `json:"primary"`
	Aliases []string `json:"aliases,omitempty"`
}

// All returns the primary domain followed by the aliases.
func (d *Domains) All() []string {
	if d == nil {
		return nil
	}
	return append([]string{d.Primary}, d.Aliases...)
}

// Hosting chooses the backend that hosts the site.
type Hosting struct {
	Provider         HostingProvider `json:"provider"`
	ProjectName      string          `json:"projectName,omitempty"`
	ProductionBranch string          `json:"productionBranch,omitempty"`
}

// DNS is the zone the site's records live in.
type DNS struct {
	Provider HostingProvider `json:"provider"`
	ZoneID   string          `json:"zoneId,omitempty"`
	Records  []DNSRecord     `json:"records,omitempty"`
}

// DNSRecord is one record to keep in the zone.
type DNSRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	TTL   uint32 `json:"ttl,omitempty"`
}

// Purchase asks for a domain to be registered. No bundled backend buys
// anything: a plan shows it as an action for a registrar plugin.
type Purchase struct {
	Provider Registrar `json:"provider"`
	Domain   string    `json:"domain"`
}

// enumNames maps the ordinals of one wire enum to their schema names. The
// index is the ordinal: the order is the wire contract.
type enumNames struct {
	typ   string
	names []string
}

func (e enumNames) name(v uint16) string {
	if int(v) < len(e.names) {
		return e.names[v]
	}
	return fmt.Sprintf("%s(%d)", e.typ, v)
}

func (e enumNames) valid(v uint16) bool { return int(v) < len(e.names) }

func (e enumNames) parse(s string) (uint16, error) {
	for i, n := range e.names {
		if n == s {
			return uint16(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (one of %s)", e.typ, s, strings.Join(e.names, ", "))
}

var (
	siteKinds        = enumNames{"SiteKind", []string{"treelink", "blog", "store", "docs"}}
	hostingProviders = enumNames{"HostingProvider", []string{"cloudflarePages", "localStatic", "s3Static", "criomosHost"}}
	repoProviders    = enumNames{"RepoProvider", []string{"github", "gitlab", "none"}}
	buildTypes       = enumNames{"BuildType", []string{"staticPrebuilt", "hugoNix", "nextStatic", "astroStatic"}}
	cfFrameworks     = enumNames{"CfFramework", []string{"none", "hugo", "next", "astro", "nuxt"}}
	registrars       = enumNames{"Registrar", []string{"namecheap", "gandi", "cloudflareReg"}}
)

// SiteKind is what kind of site it is.
type SiteKind uint16

// Site kinds, by wire ordinal.
const (
	KindTreelink SiteKind = iota
	KindBlog
	KindStore
	KindDocs
)

func (v SiteKind) String() string                { return siteKinds.name(uint16(v)) }
func (v SiteKind) MarshalText() ([]byte, error)  { return []byte(v.String()), nil }
func (v *SiteKind) UnmarshalText(b []byte) error { return unmarshalEnum(siteKinds, b, (*uint16)(v)) }

// HostingProvider names a hosting backend (and, in DNS, a DNS provider).
type HostingProvider uint16

// Hosting providers, by wire ordinal.
const (
	ProviderCloudflarePages HostingProvider = iota
	ProviderLocalStatic
	ProviderS3Static
	ProviderCriomosHost
)

func (v HostingProvider) String() string               { return hostingProviders.name(uint16(v)) }
func (v HostingProvider) MarshalText() ([]byte, error) { return []byte(v.String()), nil }
func (v *HostingProvider) UnmarshalText(b []byte) error {
	return unmarshalEnum(hostingProviders, b, (*uint16)(v))
}

// HostingProviders lists every provider this build knows, in ordinal order.
func HostingProviders() []HostingProvider {
	out := make([]HostingProvider, len(hostingProviders.names))
	for i := range out {
		out[i] = HostingProvider(i)
	}
	return out
}

// ParseHostingProvider returns the provider with the schema name s.
func ParseHostingProvider(s string) (HostingProvider, error) {
	v, err := hostingProviders.parse(s)
	return HostingProvider(v), err
}

// RepoProvider is where a site's repository is hosted.
type RepoProvider uint16

// Repo providers, by wire ordinal.
const (
	RepoGitHub RepoProvider = iota
	RepoGitLab
	RepoNone
)

func (v RepoProvider) String() string               { return repoProviders.name(uint16(v)) }
func (v RepoProvider) MarshalText() ([]byte, error) { return []byte(v.String()), nil }
func (v *RepoProvider) UnmarshalText(b []byte) error {
	return unmarshalEnum(repoProviders, b, (*uint16)(v))
}

// BuildType is how a site's files are produced.
type BuildType uint16

// Build types, by wire ordinal.
const (
	BuildStaticPrebuilt BuildType = iota
	BuildHugoNix
	BuildNextStatic
	BuildAstroStatic
)

func (v BuildType) String() string                { return buildTypes.name(uint16(v)) }
func (v BuildType) MarshalText() ([]byte, error)  { return []byte(v.String()), nil }
func (v *BuildType) UnmarshalText(b []byte) error { return unmarshalEnum(buildTypes, b, (*uint16)(v)) }

// CfFramework is the framework preset of a Cloudflare Pages build.
type CfFramework uint16

// Frameworks, by wire ordinal.
const (
	FrameworkNone CfFramework = iota
	FrameworkHugo
	FrameworkNext
	FrameworkAstro
	FrameworkNuxt
)

func (v CfFramework) String() string               { return cfFrameworks.name(uint16(v)) }
func (v CfFramework) MarshalText() ([]byte, error) { return []byte(v.String()), nil }
func (v *CfFramework) UnmarshalText(b []byte) error {
	return unmarshalEnum(cfFrameworks, b, (*uint16)(v))
}

// Registrar is a domain registrar.
type Registrar uint16

// Registrars, by wire ordinal.
const (
	RegistrarNamecheap Registrar = iota
	RegistrarGandi
	RegistrarCloudflare
)

func (v Registrar) String() string                { return registrars.name(uint16(v)) }
func (v Registrar) MarshalText() ([]byte, error)  { return []byte(v.String()), nil }
func (v *Registrar) UnmarshalText(b []byte) error { return unmarshalEnum(registrars, b, (*uint16)(v)) }

func unmarshalEnum(e enumNames, b []byte, dst *uint16) error {
	v, err := e.parse(string(b))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
