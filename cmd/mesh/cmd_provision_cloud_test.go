package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/internal/cfcontract"
	"github.com/mycelium-mesh/mesh/internal/versitygwtest"
)

// The bundled cloud backends, run out of process by mesh provision: an
// s3Static site synced to a real S3 server and served by its website
// listener, a cloudflarePages site deployed to the contract server with
// its DNS records, both unchanged on a second run; without the Cloudflare
// variables the run exits 78 and names them.
func TestProvisionCloudBackends(t *testing.T) {
	bin := buildConfigMesh(t)
	s3 := versitygwtest.Start(t)
	cf := cfcontract.Start(t)
	dir := t.TempDir()
	files := map[string]string{
		"mesh.hcl": `data_dir = "./data"
plugin "hosting" "s3-static" {
  config {
    sites_root = "./sites"
    endpoint   = "` + s3.Endpoint + `"
    path_style = true
  }
}
plugin "hosting" "cloudflare-pages" {
  config {
    sites_root = "./sites"
    api_base   = "` + cf.URL + `"
  }
}
provision {
  providers = { s3Static = "s3-static", cloudflarePages = "cloudflare-pages" }
}
`,
		"sites/shop/index.html": "<h1>shop</h1>",
		"sites/shop/404.html":   "<h1>no such page</h1>",
		"sites/blog/index.html": "<h1>blog</h1>",
		"sites.hcl": `site "shop" {
  hosting { provider = "s3Static" }
}
site "blog" {
  domains { primary = "blog.example.org" }
  hosting {
    provider          = "cloudflarePages"
    production_branch = "main"
  }
  dns {
    provider = "cloudflarePages"
    zone_id  = "zone1"
    record {
      name  = "_verify.blog.example.org"
      type  = "TXT"
      value = "hello"
      ttl   = 300
    }
  }
}
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stream := encodeSites(t, bin, dir, "sites.hcl")
	env := append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+versitygwtest.AccessKey, "AWS_SECRET_ACCESS_KEY="+versitygwtest.SecretKey,
		"CLOUDFLARE_API_TOKEN="+cf.Token, "CLOUDFLARE_ACCOUNT_ID="+cf.Account)

	run := func(env []string) (int, map[string]map[string]any, string) {
		t.Helper()
		cmd := exec.Command(bin, "provision", "-config", "mesh.hcl")
		cmd.Dir, cmd.Env = dir, env
		cmd.Stdin = bytes.NewReader(stream)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("result line %q: %v", sc.Text(), err)
			}
			out[m["site"].(string)] = m
		}
		all := stdout.String() + stderr.String()
		if strings.Contains(all, cf.Token) || strings.Contains(all, versitygwtest.SecretKey) {
			t.Fatalf("a secret appears in the output:\n%s", all)
		}
		return cmd.ProcessState.ExitCode(), out, stderr.String()
	}

	code, out, stderr := run(env)
	if code != 0 || out["shop"]["status"] != "applied" || out["blog"]["status"] != "applied" {
		t.Fatalf("first run: exit %d %v\n%s", code, out, stderr)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+s3.Website+"/", nil)
	req.Host = "shop"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<h1>shop</h1>" {
		t.Fatalf("website GET / for shop: %d %q", resp.StatusCode, body)
	}
	if p := cf.ProjectState("blog"); p == nil || len(p.Deployments) != 1 || p.Domains["blog.example.org"] == "" {
		t.Fatalf("pages project: %+v", p)
	}
	if recs := cf.Records("zone1"); len(recs) != 2 {
		t.Fatalf("zone records: %+v", recs)
	}

	code, out, stderr = run(env)
	if code != 0 || out["shop"]["status"] != "unchanged" || out["blog"]["status"] != "unchanged" {
		t.Fatalf("second run: exit %d %v\n%s", code, out, stderr)
	}

	var noCF []string
	for _, e := range env {
		if !strings.HasPrefix(e, "CLOUDFLARE_") {
			noCF = append(noCF, e)
		}
	}
	code, out, _ = run(noCF)
	msg, _ := out["blog"]["error"].(string)
	if code != 78 || !strings.Contains(msg, "CLOUDFLARE_API_TOKEN") || !strings.Contains(msg, "CLOUDFLARE_ACCOUNT_ID") {
		t.Fatalf("without Cloudflare credentials: exit %d, blog %v", code, out["blog"])
	}
	for _, v := range cf.Violations() {
		t.Errorf("contract violation: %s", v)
	}
}
