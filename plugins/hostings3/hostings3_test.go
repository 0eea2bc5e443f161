package hostings3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mycelium-mesh/mesh/core/provision"
	"github.com/mycelium-mesh/mesh/internal/versitygwtest"
	"github.com/mycelium-mesh/mesh/sdk"
)

// harness is one S3 server behind a counting proxy, a sites root, an
// ownership store and an engine that drives the plugin in process.
type harness struct {
	t      testing.TB
	srv    *versitygwtest.Server
	proxy  *s3Proxy
	root   string
	be     sdk.HostingBackend
	engine *provision.Engine
	raw    *s3.Client // the test's own client, straight to the server
}

func newHarness(t testing.TB, extra sdk.Config) *harness {
	t.Helper()
	h := &harness{t: t, srv: versitygwtest.Start(t), root: t.TempDir()}
	h.proxy = newS3Proxy(t, h.srv.Endpoint)
	cfg := sdk.Config{
		"sites_root": h.root, "endpoint": h.proxy.URL, "path_style": true,
		"access_key_id": versitygwtest.AccessKey, "secret_access_key": versitygwtest.SecretKey,
		"request_timeout": "5s", "attempts": 3.0,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	h.be = New()
	if err := h.be.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	h.engine = provision.NewEngine(provision.EngineOptions{
		Backends: provision.BackendMap{provision.ProviderS3Static: {Name: Name, Backend: provision.PluginBackend{Service: h.be}}},
		Owners:   &provision.Owners{Dir: t.TempDir()},
	})
	h.raw = newClient(settings{endpoint: h.srv.Endpoint, pathStyle: true, region: "us-east-1",
		accessKey: versitygwtest.AccessKey, secretKey: versitygwtest.SecretKey, timeout: 5 * time.Second, attempts: 1})
	return h
}

func siteConfig(id string) *provision.Config {
	return &provision.Config{
		Site:    provision.Site{ID: id},
		Build:   &provision.Build{Type: provision.BuildStaticPrebuilt},
		Hosting: provision.Hosting{Provider: provision.ProviderS3Static},
	}
}

func (h *harness) write(site string, files map[string]string) {
	h.t.Helper()
	for name, body := range files {
		p := filepath.Join(h.root, site, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
}

// run reconciles c and returns its result, as the JSON line would carry it.
func (h *harness) run(c *provision.Config) provision.Result {
	h.t.Helper()
	res := h.engine.Reconcile(context.Background(), c)
	line, err := json.Marshal(res)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Logf("result: %.400s", line)
	return res
}

func (h *harness) web(bucket, path string) (int, string, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.srv.Website+path, nil)
	req.Host = bucket
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s from the website listener: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func (h *harness) objects(bucket string) map[string]bool {
	h.t.Helper()
	out := map[string]bool{}
	list, err := h.raw.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		h.t.Fatalf("list %s: %v", bucket, err)
	}
	for _, o := range list.Contents {
		out[aws.ToString(o.Key)] = true
	}
	return out
}

func countOps(acts []provision.Action) map[string]int {
	out := map[string]int{}
	for _, a := range acts {
		out[a.Op+" "+a.Kind]++
	}
	return out
}

func TestSyncServeChangeAndConverge(t *testing.T) {
	h := newHarness(t, nil)
	h.write("blog", map[string]string{
		"index.html":    "<h1>home</h1>",
		"404.html":      "<h1>not here</h1>",
		"css/site.css":  "body{}",
		"img/logo.png":  "png-bytes",
		"about/old.txt": "old",
	})
	c := siteConfig("blog")

	// First run: bucket, objects, website and policy created.
	res := h.run(c)
	if res.Status != provision.StatusApplied {
		t.Fatalf("first run: %s %s", res.Status, res.Error)
	}
	ops := countOps(res.Actions)
	if ops["create bucket"] != 1 || ops["create object"] != 5 || ops["create website"] != 1 || ops["create policy"] != 1 {
		t.Fatalf("first run actions: %v", ops)
	}
	if code, ctype, body := h.web("blog", "/"); code != 200 || body != "<h1>home</h1>" || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("GET / = %d %q %q", code, ctype, body)
	}
	if code, _, body := h.web("blog", "/nope.html"); code != 404 || body != "<h1>not here</h1>" {
		t.Fatalf("GET /nope.html = %d %q", code, body)
	}
	if code, ctype, _ := h.web("blog", "/css/site.css"); code != 200 || !strings.HasPrefix(ctype, "text/css") {
		t.Fatalf("GET /css/site.css = %d %q", code, ctype)
	}

	// An object someone else put in the bucket.
	if _, err := h.raw.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("blog"), Key: aws.String("foreign.txt"), Body: strings.NewReader("not ours")}); err != nil {
		t.Fatal(err)
	}

	// Second identical run: reads only.
	h.proxy.reset()
	res = h.run(c)
	counts, _ := h.proxy.reset()
	if res.Status != provision.StatusUnchanged || len(res.Actions) != 0 {
		t.Fatalf("identical run: %s %v %s", res.Status, res.Actions, res.Error)
	}
	if w := writes(counts); w != 0 {
		t.Fatalf("identical run made %d writes: %v", w, counts)
	}

	// One file changed, one added, one removed: two PUTs, one DELETE, the
	// foreign object left alone.
	h.write("blog", map[string]string{"index.html": "<h1>home v2</h1>", "new.html": "new"})
	if err := os.Remove(filepath.Join(h.root, "blog", "about", "old.txt")); err != nil {
		t.Fatal(err)
	}
	res = h.run(c)
	counts, puts := h.proxy.reset()
	if res.Status != provision.StatusApplied {
		t.Fatalf("changed run: %s %s", res.Status, res.Error)
	}
	if puts != 2 || counts[http.MethodDelete] != 1 {
		t.Fatalf("changed run: %d object PUTs and %d DELETEs (want 2 and 1): %v", puts, counts[http.MethodDelete], counts)
	}
	if ops := countOps(res.Actions); ops["update object"] != 1 || ops["create object"] != 1 || ops["delete object"] != 1 || len(res.Actions) != 3 {
		t.Fatalf("changed run actions: %v", res.Actions)
	}
	objs := h.objects("blog")
	if objs["about/old.txt"] || !objs["new.html"] || !objs["foreign.txt"] {
		t.Fatalf("bucket after the change: %v", objs)
	}
	if _, _, body := h.web("blog", "/"); body != "<h1>home v2</h1>" {
		t.Fatalf("GET / after the change = %q", body)
	}

	// The foreign object stays even when nothing of ours is left to delete.
	res = h.run(c)
	if res.Status != provision.StatusUnchanged || !h.objects("blog")["foreign.txt"] {
		t.Fatalf("run after the change: %s %v", res.Status, res.Actions)
	}
}

func TestServerStoppedMidSyncThenConverges(t *testing.T) {
	h := newHarness(t, sdk.Config{"attempts": 2.0, "concurrency": 2.0})
	files := map[string]string{"index.html": "home"}
	for i := range 40 {
		files[fmt.Sprintf("page/%02d.html", i)] = fmt.Sprintf("page %d", i)
	}
	h.write("docs", files)
	c := siteConfig("docs")

	stopped := make(chan struct{})
	h.proxy.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 10 {
			h.srv.Stop()
			close(stopped)
		}
		return false
	})
	res := h.run(c)
	select {
	case <-stopped:
	default:
		t.Fatalf("the sync ended before its tenth object PUT: %s %s", res.Status, res.Error)
	}
	if res.Status != provision.StatusFailed || res.Error == "" {
		t.Fatalf("run with the server stopped: %s %s", res.Status, res.Error)
	}
	done := countOps(res.Actions)["create object"]
	if done == 0 || done >= len(files) {
		t.Fatalf("a partial sync reports what it did: %d of %d objects", done, len(files))
	}
	t.Logf("stopped after %d objects: %s", done, res.Error)

	h.proxy.setHook(nil)
	h.srv.Restart()
	h.proxy.reset()
	res = h.run(c)
	_, puts := h.proxy.reset()
	if res.Status != provision.StatusApplied {
		t.Fatalf("run after the restart: %s %s", res.Status, res.Error)
	}
	if puts > len(files)-done {
		t.Fatalf("the next run uploaded %d objects; %d were already there", puts, done)
	}
	if got := len(h.objects("docs")); got != len(files) {
		t.Fatalf("bucket holds %d objects, want %d", got, len(files))
	}
	if res = h.run(c); res.Status != provision.StatusUnchanged {
		t.Fatalf("third run: %s %v", res.Status, res.Actions)
	}
	if code, _, body := h.web("docs", "/page/07.html"); code != 200 || body != "page 7" {
		t.Fatalf("GET /page/07.html = %d %q", code, body)
	}
}

// A put whose answer was lost leaves an up-to-date object that the
// ownership record lacks; it carries the site's mark, so it is adopted
// (without a write) and deleted once it leaves the site. An identical
// object without the mark is never adopted.
func TestLostPutIsAdoptedByItsMark(t *testing.T) {
	h := newHarness(t, nil)
	h.write("wiki", map[string]string{"index.html": "home", "a.html": "a", "b.html": "b"})
	c := siteConfig("wiki")
	if res := h.run(c); res.Status != provision.StatusApplied {
		t.Fatalf("first run: %s %s", res.Status, res.Error)
	}
	// Someone else's identical copy under another key the site will use.
	h.write("wiki", map[string]string{"c.html": "c"})
	if _, err := h.raw.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("wiki"), Key: aws.String("c.html"), Body: strings.NewReader("c")}); err != nil {
		t.Fatal(err)
	}
	// The provisioner forgets what it did, as when put answers are lost.
	h.engine = provision.NewEngine(provision.EngineOptions{
		Backends: provision.BackendMap{provision.ProviderS3Static: {Name: Name, Backend: provision.PluginBackend{Service: h.be}}},
		Owners:   &provision.Owners{Dir: t.TempDir()},
	})
	h.proxy.reset()
	res := h.run(c)
	counts, _ := h.proxy.reset()
	if res.Status != provision.StatusApplied || writes(counts) != 0 {
		t.Fatalf("adopting run: %s %v; writes %v", res.Status, res.Actions, counts)
	}
	adopted := map[string]bool{}
	for _, a := range res.Actions {
		if a.Detail == adoptDetail {
			adopted[a.Key] = true
		}
	}
	if len(adopted) != 3 || adopted["c.html"] {
		t.Fatalf("adopted %v, want index.html, a.html and b.html", adopted)
	}
	for _, f := range []string{"a.html", "c.html"} {
		if err := os.Remove(filepath.Join(h.root, "wiki", f)); err != nil {
			t.Fatal(err)
		}
	}
	if res := h.run(c); res.Status != provision.StatusApplied {
		t.Fatalf("removal run: %s %s", res.Status, res.Error)
	}
	objs := h.objects("wiki")
	if objs["a.html"] || !objs["c.html"] || !objs["b.html"] {
		t.Fatalf("bucket after the removal: %v", objs)
	}
}

func TestRetriesThrottlingAndReportsRefusals(t *testing.T) {
	h := newHarness(t, nil)
	h.write("shop", map[string]string{"index.html": "shop"})
	c := siteConfig("shop")

	// A 503 with Retry-After on the first object PUT: retried, and the
	// run succeeds.
	throttled := 0
	h.proxy.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 && throttled == 0 && r.Method == http.MethodPut && isObjectPath(r.URL.Path) {
			throttled++
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if res := h.run(c); res.Status != provision.StatusApplied || throttled != 1 {
		t.Fatalf("throttled run: %s %s (throttled %d)", res.Status, res.Error, throttled)
	}

	// A 403 with the provider's code: reported, not retried.
	h.write("shop", map[string]string{"index.html": "shop v2"})
	h.proxy.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.Method == http.MethodPut && isObjectPath(r.URL.Path) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied by policy</Message></Error>`)
			return true
		}
		return false
	})
	h.proxy.reset()
	res := h.run(c)
	_, puts := h.proxy.reset()
	if res.Status != provision.StatusFailed || !strings.Contains(res.Error, "AccessDenied") || !strings.Contains(res.Error, "Access Denied by policy") {
		t.Fatalf("refused run: %s %q", res.Status, res.Error)
	}
	if puts != 1 {
		t.Fatalf("a 403 was tried %d times, want once", puts)
	}
}

func TestMissingCredentialsAreConfigMissing(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	be := New()
	if err := be.Configure(context.Background(), sdk.Config{"sites_root": t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	_, err := be.Observe(context.Background(), sdk.HostingRequest{Site: sdk.SiteConfig{Site: sdk.SiteInfo{ID: "blog"}}})
	if !errors.Is(err, sdk.ErrConfigMissing) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("Observe without credentials: %v", err)
	}
	// The secret never appears in an error.
	if err := be.Configure(context.Background(), sdk.Config{"sites_root": t.TempDir(), "access_key_id": "AKIDEXAMPLE", "secret_access_key": "s3cr3t-do-not-print", "endpoint": "http://127.0.0.1:1", "attempts": 1.0}); err != nil {
		t.Fatal(err)
	}
	_, err = be.Observe(context.Background(), sdk.HostingRequest{Site: sdk.SiteConfig{Site: sdk.SiteInfo{ID: "blog"}}})
	if err == nil || strings.Contains(err.Error(), "s3cr3t-do-not-print") {
		t.Fatalf("Observe against a closed port: %v", err)
	}
}

func TestBucketNames(t *testing.T) {
	cases := []struct {
		prefix, project, id, want string
		ok                        bool
	}{
		{"", "", "blog", "blog", true},
		{"", "my-project", "blog", "my-project", true},
		{"sites-", "", "blog", "sites-blog", true},
		{"", "", "ab", "", false},
		{"", "Upper", "blog", "", false},
	}
	for _, c := range cases {
		be := New().(*backend)
		if err := be.Configure(context.Background(), sdk.Config{"sites_root": "/x", "access_key_id": "a", "secret_access_key": "b", "bucket_prefix": c.prefix}); err != nil {
			t.Fatal(err)
		}
		tg, err := be.target(sdk.HostingRequest{Site: sdk.SiteConfig{Site: sdk.SiteInfo{ID: c.id}, Hosting: sdk.HostingInfo{ProjectName: c.project}}})
		if (err == nil) != c.ok || (c.ok && tg.bucket != c.want) {
			t.Errorf("prefix %q project %q id %q: bucket %q, err %v", c.prefix, c.project, c.id, tg.bucket, err)
		}
	}
}
