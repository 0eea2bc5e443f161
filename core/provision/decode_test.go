package provision

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"

	"github.com/mycelium-mesh/mesh/proto/sporev1"
)

// decodeFixture reads one packed message written by the reference C++ tool
// (testdata/gen.sh) and decodes it.
func decodeFixture(t *testing.T, name string) (*Config, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := capnp.UnmarshalPacked(b)
	if err != nil {
		t.Fatalf("unmarshal %s: %v", name, err)
	}
	return Decode(msg)
}

func TestDecodeReferenceFixtures(t *testing.T) {
	tests := []struct {
		name    string
		want    *Config
		wantErr error
		field   string
		detail  string
	}{
		{name: "full", want: &Config{
			Site:    Site{ID: "blog", Title: "A Blog", Kind: KindBlog},
			Repo:    &Repo{Provider: RepoNone},
			Build:   &Build{Type: BuildStaticPrebuilt, OutputDir: "blog/public", Framework: FrameworkHugo},
			Domains: &Domains{Primary: "blog.example.test", Aliases: []string{"www.blog.example.test", "blog.example.org"}},
			Hosting: Hosting{Provider: ProviderLocalStatic, ProjectName: "blog", ProductionBranch: "main"},
			DNS: &DNS{Provider: ProviderCloudflarePages, ZoneID: "zone-1", Records: []DNSRecord{
				{Name: "www", Type: "CNAME", Value: "blog.pages.dev", TTL: 300}}},
			Purchase: &Purchase{Provider: RegistrarGandi, Domain: "example.test"},
		}},
		{name: "minimal", want: &Config{Site: Site{ID: "docs"}, Hosting: Hosting{Provider: ProviderCriomosHost}}},
		// A present hosting struct whose provider is the zero ordinal is
		// cloudflarePages; only an absent one is refused.
		{name: "zero-hosting", want: &Config{Site: Site{ID: "shop"}, Hosting: Hosting{Provider: ProviderCloudflarePages}}},
		{name: "no-hosting", wantErr: ErrRequired, field: "hosting"},
		{name: "bad-site-id", wantErr: ErrBadLabel, field: "site.id"},
		// Written with a later schema: a new field is ignored ...
		{name: "future-field", want: &Config{Site: Site{ID: "later"}, Hosting: Hosting{Provider: ProviderS3Static}}},
		// ... a new enum value is refused by type, name of field and number.
		{name: "future-provider", wantErr: ErrUnknownEnum, field: "hosting.provider", detail: "HostingProvider ordinal 4"},
		{name: "future-kind", wantErr: ErrUnknownEnum, field: "site.kind", detail: "SiteKind ordinal 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFixture(t, tt.name)
			if tt.wantErr != nil {
				checkRefusal(t, err, tt.wantErr, tt.field, tt.detail)
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func checkRefusal(t *testing.T, err, kind error, field, detail string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("error %v names field %q, want %q", err, fieldOf(fe), field)
	}
	if !strings.Contains(err.Error(), detail) {
		t.Fatalf("error %q does not say %q", err, detail)
	}
}

func fieldOf(fe *FieldError) string {
	if fe == nil {
		return "(not a FieldError)"
	}
	return fe.Field
}

// build makes a message from a valid base (site "ok", hosting localStatic)
// changed by edit, so each refusal case states only what it breaks.
func build(t testing.TB, edit func(root sporev1.SporeConfig)) *capnp.Message {
	t.Helper()
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := sporev1.NewRootSporeConfig(seg)
	s, _ := root.NewSite()
	_ = s.SetId("ok")
	h, _ := root.NewHosting()
	h.SetProvider(sporev1.HostingProvider_localStatic)
	if edit != nil {
		edit(root)
	}
	return msg
}

func TestDecodeRefusals(t *testing.T) {
	long := strings.Repeat("a", MaxTextLen+1)
	tests := []struct {
		name   string
		edit   func(r sporev1.SporeConfig)
		kind   error
		field  string
		detail string
	}{
		{"no site", func(r sporev1.SporeConfig) { _ = r.SetSite(sporev1.Site{}) }, ErrRequired, "site", ""},
		{"empty site id", func(r sporev1.SporeConfig) { s, _ := r.NewSite(); _ = s.SetTitle("x") }, ErrRequired, "site.id", ""},
		{"site id with dot", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetId("a.b") }, ErrBadLabel, "site.id", "only a-z"},
		{"site id upper case", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetId("Blog") }, ErrBadLabel, "site.id", ""},
		{"site id leading hyphen", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetId("-x") }, ErrBadLabel, "site.id", "starts or ends"},
		{"site id 64 bytes", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetId(strings.Repeat("a", 64)) }, ErrTooLong, "site.id", "at most 63"},
		{"site title too long", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetTitle(long) }, ErrTooLong, "site.title", "1025 bytes"},
		{"site title control char", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetTitle("a\x1bb") }, ErrBadText, "site.title", "U+001B"},
		{"site title invalid utf8", func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetTitle("a\xffb") }, ErrBadText, "site.title", "UTF-8"},
		{"site kind newer", func(r sporev1.SporeConfig) { s, _ := r.Site(); s.SetKind(9) }, ErrUnknownEnum, "site.kind", "SiteKind ordinal 9"},
		{"no hosting", func(r sporev1.SporeConfig) { _ = r.SetHosting(sporev1.Hosting{}) }, ErrRequired, "hosting", "cloudflarePages"},
		{"hosting provider newer", func(r sporev1.SporeConfig) { h, _ := r.Hosting(); h.SetProvider(4) }, ErrUnknownEnum, "hosting.provider", "known: 0..3"},
		{"hosting project name", func(r sporev1.SporeConfig) { h, _ := r.Hosting(); _ = h.SetProjectName("My Project") }, ErrBadLabel, "hosting.projectName", ""},
		{"hosting branch too long", func(r sporev1.SporeConfig) { h, _ := r.Hosting(); _ = h.SetProductionBranch(long) }, ErrTooLong, "hosting.productionBranch", ""},
		{"repo provider newer", func(r sporev1.SporeConfig) { p, _ := r.NewRepo(); p.SetProvider(3) }, ErrUnknownEnum, "repo.provider", "RepoProvider ordinal 3"},
		{"repo github without slug", func(r sporev1.SporeConfig) { _, _ = r.NewRepo() }, ErrRequired, "repo.slug", "github"},
		{"repo slug too long", func(r sporev1.SporeConfig) { p, _ := r.NewRepo(); _ = p.SetSlug(long) }, ErrTooLong, "repo.slug", ""},
		{"repo branch control", func(r sporev1.SporeConfig) {
			p, _ := r.NewRepo()
			p.SetProvider(sporev1.RepoProvider_none)
			_ = p.SetDefaultBranch("a\nb")
		}, ErrBadText, "repo.defaultBranch", ""},
		{"build type newer", func(r sporev1.SporeConfig) { b, _ := r.NewBuild(); b.SetType(4) }, ErrUnknownEnum, "build.type", "BuildType ordinal 4"},
		{"build framework newer", func(r sporev1.SporeConfig) { b, _ := r.NewBuild(); b.SetFramework(5) }, ErrUnknownEnum, "build.framework", "CfFramework ordinal 5"},
		{"build output absolute", func(r sporev1.SporeConfig) { b, _ := r.NewBuild(); _ = b.SetOutputDir("/etc") }, ErrBadPath, "build.outputDir", "/etc"},
		{"build output climbs", func(r sporev1.SporeConfig) { b, _ := r.NewBuild(); _ = b.SetOutputDir("a/../../x") }, ErrBadPath, "build.outputDir", ".."},
		{"build output backslash", func(r sporev1.SporeConfig) { b, _ := r.NewBuild(); _ = b.SetOutputDir(`a\b`) }, ErrBadPath, "build.outputDir", ""},
		{"domains without primary", func(r sporev1.SporeConfig) { _, _ = r.NewDomains() }, ErrRequired, "domains.primary", ""},
		{"domains primary wildcard", func(r sporev1.SporeConfig) { d, _ := r.NewDomains(); _ = d.SetPrimary("*.example.test") }, ErrBadHost, "domains.primary", ""},
		{"domains primary port", func(r sporev1.SporeConfig) { d, _ := r.NewDomains(); _ = d.SetPrimary("example.test:80") }, ErrBadHost, "domains.primary", ""},
		{"domains primary empty label", func(r sporev1.SporeConfig) { d, _ := r.NewDomains(); _ = d.SetPrimary("a..test") }, ErrBadHost, "domains.primary", "empty label"},
		{"domains primary long label", func(r sporev1.SporeConfig) {
			d, _ := r.NewDomains()
			_ = d.SetPrimary(strings.Repeat("a", 64) + ".test")
		}, ErrBadHost, "domains.primary", "longer than 63"},
		{"domains primary too long", func(r sporev1.SporeConfig) {
			d, _ := r.NewDomains()
			_ = d.SetPrimary(strings.Repeat("abcdefghi.", 26))
		}, ErrTooLong, "domains.primary", "at most 253"},
		{"alias invalid", func(r sporev1.SporeConfig) {
			d, _ := r.NewDomains()
			_ = d.SetPrimary("a.test")
			l, _ := d.NewAliases(2)
			_ = l.Set(0, "b.test")
			_ = l.Set(1, "bad_host.test")
		}, ErrBadHost, "domains.aliases[1]", "bad_host"},
		{"alias duplicates primary", func(r sporev1.SporeConfig) {
			d, _ := r.NewDomains()
			_ = d.SetPrimary("a.test")
			l, _ := d.NewAliases(1)
			_ = l.Set(0, "A.test.")
		}, ErrDuplicate, "domains.aliases[0]", "domains.primary"},
		{"too many aliases", func(r sporev1.SporeConfig) {
			d, _ := r.NewDomains()
			_ = d.SetPrimary("a.test")
			_, _ = d.NewAliases(MaxAliases + 1)
		}, ErrTooMany, "domains.aliases", "at most 100"},
		{"dns provider newer", func(r sporev1.SporeConfig) { d, _ := r.NewDns(); d.SetProvider(7) }, ErrUnknownEnum, "dns.provider", "HostingProvider ordinal 7"},
		{"dns zone too long", func(r sporev1.SporeConfig) { d, _ := r.NewDns(); _ = d.SetZoneId(long) }, ErrTooLong, "dns.zoneId", ""},
		{"dns record without name", func(r sporev1.SporeConfig) {
			d, _ := r.NewDns()
			l, _ := d.NewRecords(1)
			_ = l.At(0).SetType("A")
		}, ErrRequired, "dns.records[0].name", "@"},
		{"dns record unknown type", func(r sporev1.SporeConfig) {
			d, _ := r.NewDns()
			l, _ := d.NewRecords(1)
			_ = l.At(0).SetName("@")
			_ = l.At(0).SetType("SPF")
		}, ErrUnknownEnum, "dns.records[0].type", "SPF"},
		{"dns record without value", func(r sporev1.SporeConfig) {
			d, _ := r.NewDns()
			l, _ := d.NewRecords(1)
			_ = l.At(0).SetName("@")
			_ = l.At(0).SetType("A")
		}, ErrRequired, "dns.records[0].value", ""},
		{"too many dns records", func(r sporev1.SporeConfig) { d, _ := r.NewDns(); _, _ = d.NewRecords(MaxDNSRecords + 1) }, ErrTooMany, "dns.records", ""},
		{"purchase registrar newer", func(r sporev1.SporeConfig) { p, _ := r.NewPurchase(); p.SetProvider(3) }, ErrUnknownEnum, "purchase.provider", "Registrar ordinal 3"},
		{"purchase without domain", func(r sporev1.SporeConfig) { _, _ = r.NewPurchase() }, ErrRequired, "purchase.domain", ""},
		{"purchase bad domain", func(r sporev1.SporeConfig) { p, _ := r.NewPurchase(); _ = p.SetDomain("-x.test") }, ErrBadHost, "purchase.domain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(build(t, tt.edit))
			checkRefusal(t, err, tt.kind, tt.field, tt.detail)
		})
	}
}

func TestDecodeTraverseLimit(t *testing.T) {
	msg := build(t, func(r sporev1.SporeConfig) { s, _ := r.Site(); _ = s.SetTitle(strings.Repeat("t", 900)) })
	msg.ResetReadLimit(256)
	_, err := Decode(msg)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("decode past the traversal limit: %v, want ErrMalformed", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	want, err := decodeFixture(t, "full")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip\n %+v\nwant\n %+v", got, want)
	}
}
