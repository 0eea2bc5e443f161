package sitefile

import (
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/provision"
)

func TestParseValid(t *testing.T) {
	src := `
site "blog" {
  title = "A Blog"
  kind  = "blog"
  repo    { provider = "none" }
  build   {
    type       = "staticPrebuilt"
    output_dir = "blog/public"
  }
  domains {
    primary = "Blog.Example.Test"
    aliases = ["www.blog.example.test"]
  }
  hosting { provider = "localStatic" }
  dns {
    provider = "cloudflarePages"
    record {
      name  = "www"
      type  = "CNAME"
      value = "blog.pages.dev"
      ttl   = 300
    }
  }
  purchase {
    provider = "gandi"
    domain   = "example.test"
  }
}
site "docs" {
  hosting { provider = "criomosHost" }
}
`
	sites, diags := Parse([]byte(src), "sites.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(sites) != 2 {
		t.Fatalf("%d sites", len(sites))
	}
	c := sites[0].Config
	if c.Site.Kind != provision.KindBlog || c.Domains.Primary != "blog.example.test" || c.Build.OutputDir != "blog/public" ||
		c.DNS.Records[0].TTL != 300 || c.Purchase.Provider != provision.RegistrarGandi || c.Hosting.Provider != provision.ProviderLocalStatic {
		t.Fatalf("decoded %+v", c)
	}
	if sites[1].Config.Hosting.Provider != provision.ProviderCriomosHost || sites[1].Config.Build != nil {
		t.Fatalf("second %+v", sites[1].Config)
	}
}

func TestParseDiagnostics(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown kind", "site \"a\" {\n  kind = \"wiki\"\n  hosting { provider = \"localStatic\" }\n}\n", 2, `unknown SiteKind "wiki"`},
		{"unknown provider", "site \"a\" {\n  hosting {\n    provider = \"netlify\"\n  }\n}\n", 3, `unknown HostingProvider "netlify"`},
		{"missing hosting", "site \"a\" {\n  title = \"x\"\n}\n", 1, "needs a hosting block"},
		{"hosting without provider", "site \"a\" {\n  hosting {}\n}\n", 2, "needs provider"},
		{"bad site id", "site \"A_B\" {\n  hosting { provider = \"localStatic\" }\n}\n", 1, "site.id"},
		{"bad alias", "site \"a\" {\n  hosting { provider = \"localStatic\" }\n  domains {\n    primary = \"a.test\"\n    aliases = [\"b_c.test\"]\n  }\n}\n", 5, "domains.aliases[0]"},
		{"path escape", "site \"a\" {\n  hosting { provider = \"localStatic\" }\n  build {\n    output_dir = \"../x\"\n  }\n}\n", 4, "build.outputDir"},
		{"duplicate site", "site \"a\" {\n  hosting { provider = \"localStatic\" }\n}\nsite \"a\" {\n  hosting { provider = \"localStatic\" }\n}\n", 4, "already described"},
		{"unknown attribute", "site \"a\" {\n  colour = \"red\"\n  hosting { provider = \"localStatic\" }\n}\n", 2, "colour"},
		{"ttl not a number", "site \"a\" {\n  hosting { provider = \"localStatic\" }\n  dns {\n    record {\n      name = \"@\"\n      type = \"A\"\n      value = \"1.2.3.4\"\n      ttl = -1\n    }\n  }\n}\n", 8, "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse([]byte(tt.src), "sites.hcl")
			if !diags.HasErrors() {
				t.Fatal("accepted")
			}
			d := diags[0]
			if d.Subject == nil || d.Subject.Filename != "sites.hcl" || d.Subject.Start.Line != tt.line {
				t.Fatalf("diagnostic %v at %v, want line %d", d, d.Subject, tt.line)
			}
			if !strings.Contains(d.Summary+" "+d.Detail, tt.want) {
				t.Fatalf("diagnostic %q / %q does not say %q", d.Summary, d.Detail, tt.want)
			}
		})
	}
}
