// Package hostings3 is the bundled hosting plugin "s3-static": it hosts
// s3Static sites in an S3-compatible bucket configured as a website. A
// site's prebuilt files (build.outputDir under sites_root, else the site id)
// are synced to the bucket: the bucket is created when missing, each object
// is put with its content type, only files whose MD5 differs from the
// object's ETag are uploaded, and an object is deleted when it leaves the
// site only if this backend put it there (the provisioner's ownership
// record says so). The bucket gets a website configuration (index and error
// documents) and, unless disabled, a public-read bucket policy.
//
// Resources, by natural key: "bucket" (the bucket name), "object" (the
// object key, version: its MD5), "website" (the bucket; version: index and
// error documents) and "policy" (the bucket; version: a digest of the
// policy document).
//
// Credentials come from the config block or the standard AWS environment
// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN);
// they are never logged or put in an error.
package hostings3

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mycelium-mesh/mesh/sdk"
)

// Name is the plugin's name in mesh.hcl.
const Name = "s3-static"

// Version is the plugin's version.
const Version = "1.0.0"

// Resource kinds.
const (
	KindBucket  = "bucket"
	KindObject  = "object"
	KindWebsite = "website"
	KindPolicy  = "policy"
)

// settings is the decoded config block.
type settings struct {
	sitesRoot    string
	endpoint     string
	region       string
	pathStyle    bool
	bucketPrefix string
	accessKey    string
	secretKey    string
	sessionToken string
	index        string
	errorDoc     string
	publicRead   bool
	concurrency  int
	timeout      time.Duration
	attempts     int
}

type backend struct {
	mu     sync.RWMutex
	set    settings
	client *s3.Client
}

// New returns the s3-static hosting backend.
func New() sdk.HostingBackend { return &backend{} }

func (b *backend) Info() sdk.Info {
	return sdk.Info{Kind: sdk.KindHosting, Name: Name, Version: Version, APIVersions: []uint32{sdk.APIVersion}}
}

func (b *backend) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "sites_root", Type: sdk.TypePath, Default: "", Description: "directory build.outputDir (else the site id) is resolved against (required)"},
		{Name: "endpoint", Type: sdk.TypeString, Default: "", Description: "S3 endpoint URL (default: AWS for the region)"},
		{Name: "region", Type: sdk.TypeString, Default: "us-east-1", Description: "S3 region"},
		{Name: "path_style", Type: sdk.TypeBool, Default: false, Description: "address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT"},
		{Name: "bucket_prefix", Type: sdk.TypeString, Default: "", Description: "prefix of every bucket name; the rest is hosting.projectName, else site.id"},
		{Name: "access_key_id", Type: sdk.TypeString, Default: "", Description: "access key (default: AWS_ACCESS_KEY_ID)"},
		{Name: "secret_access_key", Type: sdk.TypeString, Default: "", Description: "secret key (default: AWS_SECRET_ACCESS_KEY); never logged"},
		{Name: "session_token", Type: sdk.TypeString, Default: "", Description: "session token (default: AWS_SESSION_TOKEN)"},
		{Name: "index_document", Type: sdk.TypeString, Default: "index.html", Description: "website index document"},
		{Name: "error_document", Type: sdk.TypeString, Default: "404.html", Description: "website error document, set when the site has that file"},
		{Name: "public_read", Type: sdk.TypeBool, Default: true, Description: "set a bucket policy that lets anyone read the site's objects"},
		{Name: "concurrency", Type: sdk.TypeNumber, Default: 8.0, Description: "objects uploaded or deleted at a time"},
		{Name: "request_timeout", Type: sdk.TypeDuration, Default: "60s", Description: "timeout of one S3 request attempt"},
		{Name: "attempts", Type: sdk.TypeNumber, Default: 5.0, Description: "tries of one request (429, 5xx and connection failures are retried with backoff)"},
	}}
}

func (b *backend) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{
		sitesRoot:    cfg.String("sites_root", ""),
		endpoint:     cfg.String("endpoint", ""),
		region:       cfg.String("region", "us-east-1"),
		pathStyle:    cfg.Bool("path_style", false),
		bucketPrefix: cfg.String("bucket_prefix", ""),
		accessKey:    cfg.String("access_key_id", ""),
		secretKey:    cfg.String("secret_access_key", ""),
		sessionToken: cfg.String("session_token", ""),
		index:        cfg.String("index_document", "index.html"),
		errorDoc:     cfg.String("error_document", "404.html"),
		publicRead:   cfg.Bool("public_read", true),
		concurrency:  int(cfg.Number("concurrency", 8)),
		timeout:      cfg.Duration("request_timeout", 60*time.Second),
		attempts:     int(cfg.Number("attempts", 5)),
	}
	if s.accessKey == "" && s.secretKey == "" {
		s.accessKey = os.Getenv("AWS_ACCESS_KEY_ID")
		s.secretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		if s.sessionToken == "" {
			s.sessionToken = os.Getenv("AWS_SESSION_TOKEN")
		}
	}
	if s.concurrency < 1 {
		s.concurrency = 1
	}
	if s.attempts < 1 {
		s.attempts = 1
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.index == "" {
		return fmt.Errorf("s3-static: index_document must not be empty")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set = s
	b.client = nil
	if s.accessKey != "" && s.secretKey != "" {
		b.client = newClient(s)
	}
	return nil
}

// target is what one request resolves to: the client, the bucket and the
// settings in force.
type target struct {
	client *s3.Client
	bucket string
	site   string
	set    settings
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// target resolves a request, or says which configuration is missing.
func (b *backend) target(req sdk.HostingRequest) (target, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var missing []string
	if b.set.accessKey == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID (or access_key_id)")
	}
	if b.set.secretKey == "" {
		missing = append(missing, "AWS_SECRET_ACCESS_KEY (or secret_access_key)")
	}
	if len(missing) > 0 {
		return target{}, fmt.Errorf("s3-static needs credentials: %v not set: %w", missing, sdk.ErrConfigMissing)
	}
	if b.set.sitesRoot == "" {
		return target{}, fmt.Errorf(`s3-static needs sites_root in its plugin "hosting" "s3-static" config block: %w`, sdk.ErrConfigMissing)
	}
	if req.Site.Repo != nil && req.Site.Repo.Provider != "none" {
		return target{}, fmt.Errorf("s3-static uploads prebuilt files under sites_root; repo.provider %s is not fetched", req.Site.Repo.Provider)
	}
	name := req.Site.Site.ID
	if req.Site.Hosting.ProjectName != "" {
		name = req.Site.Hosting.ProjectName
	}
	name = b.set.bucketPrefix + name
	if !bucketName.MatchString(name) {
		return target{}, fmt.Errorf("bucket name %q is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')", name)
	}
	return target{client: b.client, bucket: name, site: req.Site.Site.ID, set: b.set}, nil
}

// ValidateConfig says whether Configure would accept cfg, by configuring a
// fresh value: Configure only parses, so nothing outside changes.
func (b *backend) ValidateConfig(ctx context.Context, cfg sdk.Config) error {
	return New().Configure(ctx, cfg)
}
