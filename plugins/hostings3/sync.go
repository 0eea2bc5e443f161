package hostings3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mycelium-mesh/mesh/plugins/internal/sitefiles"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Limits of one site: a single-request put stops at 5 GiB.
var limits = sitefiles.Limits{MaxFiles: 100000, MaxFileSize: 5 << 30}

// Observe reports the bucket, its website configuration and policy, and
// its objects with their ETags. It only reads.
func (b *backend) Observe(ctx context.Context, req sdk.HostingRequest) ([]sdk.HostingResource, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	if _, err := t.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &t.bucket}); err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("head bucket %s: %w", t.bucket, err)
	}
	out := []sdk.HostingResource{{Kind: KindBucket, Key: t.bucket}}
	web, err := t.client.GetBucketWebsite(ctx, &s3.GetBucketWebsiteInput{Bucket: &t.bucket})
	switch {
	case err == nil:
		var idx, errDoc string
		if web.IndexDocument != nil {
			idx = aws.ToString(web.IndexDocument.Suffix)
		}
		if web.ErrorDocument != nil {
			errDoc = aws.ToString(web.ErrorDocument.Key)
		}
		out = append(out, sdk.HostingResource{Kind: KindWebsite, Key: t.bucket, Version: websiteVersion(idx, errDoc)})
	case !isStatus(err, http.StatusNotFound):
		return nil, fmt.Errorf("get website of %s: %w", t.bucket, err)
	}
	pol, err := t.client.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &t.bucket})
	switch {
	case err == nil:
		out = append(out, sdk.HostingResource{Kind: KindPolicy, Key: t.bucket, Version: policyVersion(aws.ToString(pol.Policy))})
	case !isStatus(err, http.StatusNotFound):
		return nil, fmt.Errorf("get policy of %s: %w", t.bucket, err)
	}
	p := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{Bucket: &t.bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list objects of %s: %w", t.bucket, err)
		}
		for _, o := range page.Contents {
			out = append(out, sdk.HostingResource{Kind: KindObject, Key: aws.ToString(o.Key), Version: strings.Trim(aws.ToString(o.ETag), `"`)})
		}
	}
	return out, nil
}

func websiteVersion(index, errDoc string) string { return "index=" + index + " error=" + errDoc }

// policyDoc is the public-read policy of a bucket.
func policyDoc(bucket string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"MeshPublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket)
}

// policyVersion names a policy document by its meaning: servers hand back
// the document reformatted, so it is compared after a JSON round trip.
func policyVersion(doc string) string {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return "unreadable"
	}
	canon, _ := json.Marshal(normalisePolicy(v))
	sum := md5.Sum(canon)
	return hex.EncodeToString(sum[:])
}

// normalisePolicy makes single-element lists and plain strings equal
// (S3 accepts "Action": "s3:GetObject" and ["s3:GetObject"] alike).
func normalisePolicy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalisePolicy(e)
		}
		return x
	case []any:
		if len(x) == 1 {
			if s, ok := x[0].(string); ok {
				return s
			}
		}
		for i, e := range x {
			x[i] = normalisePolicy(e)
		}
		return x
	}
	return v
}

// local is the site as read from disk.
type local struct {
	files map[string]localFile
	names []string
}

type localFile struct {
	sitefiles.File
	md5 string
}

func readSite(dir string) (local, error) {
	files, err := sitefiles.List(dir, limits)
	if err != nil {
		return local{}, err
	}
	l := local{files: make(map[string]localFile, len(files))}
	for _, f := range files {
		sum, err := fileMD5(f.Path)
		if err != nil {
			return local{}, err
		}
		l.files[f.Name] = localFile{File: f, md5: sum}
		l.names = append(l.names, f.Name)
	}
	return l, nil
}

func fileMD5(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Plan compares the site's files with the bucket: bucket first, then the
// objects to put, the website configuration and policy, and last the
// deletions of objects this backend put there and the site no longer has.
func (b *backend) Plan(ctx context.Context, req sdk.HostingRequest, actual []sdk.HostingResource) ([]sdk.HostingAction, error) {
	t, err := b.target(req)
	if err != nil {
		return nil, err
	}
	site, err := readSite(sitefiles.Dir(t.set.sitesRoot, req.Site))
	if err != nil {
		return nil, err
	}
	if _, ok := site.files[t.set.index]; !ok {
		return nil, fmt.Errorf("site %s has no %s (the index document)", req.Site.Site.ID, t.set.index)
	}
	var (
		haveBucket bool
		web, pol   string
		objects    = map[string]string{}
	)
	for _, r := range actual {
		switch r.Kind {
		case KindBucket:
			haveBucket = true
		case KindWebsite:
			web = r.Version
		case KindPolicy:
			pol = r.Version
		case KindObject:
			objects[r.Key] = r.Version
		}
	}
	var acts []sdk.HostingAction
	if !haveBucket {
		acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: KindBucket, Key: t.bucket})
	}
	owned := map[string]bool{}
	for _, r := range req.Owned {
		if r.Kind == KindObject {
			owned[r.Key] = true
		}
	}
	for _, n := range site.names {
		f := site.files[n]
		etag, ok := objects[n]
		switch {
		case !ok:
			acts = append(acts, sdk.HostingAction{Op: sdk.OpCreate, Kind: KindObject, Key: n, Detail: f.md5})
		case etag != f.md5:
			acts = append(acts, sdk.HostingAction{Op: sdk.OpUpdate, Kind: KindObject, Key: n, Detail: f.md5})
		case !owned[n]:
			// Up to date but not recorded as ours: a put whose answer was
			// lost. Adopt it (no write) when it carries this site's mark,
			// so it is deleted once it leaves the site.
			ours, err := markedBy(ctx, t, n, req.Site.Site.ID)
			if err != nil {
				return nil, err
			}
			if ours {
				acts = append(acts, sdk.HostingAction{Op: sdk.OpUpdate, Kind: KindObject, Key: n, Detail: adoptDetail})
			}
		}
	}
	wantWeb := websiteVersion(t.set.index, errorDoc(t.set, site))
	if web != wantWeb {
		acts = append(acts, sdk.HostingAction{Op: opFor(web), Kind: KindWebsite, Key: t.bucket, Detail: wantWeb})
	}
	if t.set.publicRead {
		if want := policyVersion(policyDoc(t.bucket)); pol != want {
			acts = append(acts, sdk.HostingAction{Op: opFor(pol), Kind: KindPolicy, Key: t.bucket, Detail: "public-read"})
		}
	}
	var gone []string
	for k := range objects {
		if _, inSite := site.files[k]; !inSite && owned[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		acts = append(acts, sdk.HostingAction{Op: sdk.OpDelete, Kind: KindObject, Key: k})
	}
	return acts, nil
}

// siteMeta is the user-metadata key every object put carries: the id of
// the site it belongs to.
const siteMeta = "mesh-site"

// adoptDetail marks an action that records an existing object as this
// backend's without writing it.
const adoptDetail = "adopt: already up to date, put by this backend"

// markedBy reports whether an object carries site's mark.
func markedBy(ctx context.Context, t target, key, site string) (bool, error) {
	out, err := t.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &t.bucket, Key: aws.String(key)})
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("head %s/%s: %w", t.bucket, key, err)
	}
	return out.Metadata[siteMeta] == site, nil
}

func opFor(version string) string {
	if version == "" {
		return sdk.OpCreate
	}
	return sdk.OpUpdate
}

// errorDoc is the error document when the site has it, else none.
func errorDoc(s settings, site local) string {
	if _, ok := site.files[s.errorDoc]; ok && s.errorDoc != "" {
		return s.errorDoc
	}
	return ""
}

// Apply performs the plan in order; objects are put and deleted
// concurrently (concurrency at a time). done is called for each action as
// it succeeds, so a partial failure records what was done and the next run
// converges from there.
func (b *backend) Apply(ctx context.Context, req sdk.HostingRequest, actions []sdk.HostingAction, done func(sdk.HostingAction)) error {
	t, err := b.target(req)
	if err != nil {
		return err
	}
	dir := sitefiles.Dir(t.set.sitesRoot, req.Site)
	site, err := readSite(dir)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	report := func(a sdk.HostingAction) {
		mu.Lock()
		defer mu.Unlock()
		done(a)
	}
	var batch []sdk.HostingAction
	flush := func() error {
		err := runObjects(ctx, t, site, batch, report)
		batch = batch[:0]
		return err
	}
	for _, a := range actions {
		if a.Kind == KindObject {
			batch = append(batch, a)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := applyBucketAction(ctx, t, site, a); err != nil {
			return err
		}
		report(a)
	}
	return flush()
}

func applyBucketAction(ctx context.Context, t target, site local, a sdk.HostingAction) error {
	switch a.Kind {
	case KindBucket:
		in := &s3.CreateBucketInput{Bucket: &t.bucket}
		if t.set.region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(t.set.region)}
		}
		_, err := t.client.CreateBucket(ctx, in)
		var owned *types.BucketAlreadyOwnedByYou
		if err != nil && !errors.As(err, &owned) && apiCode(err) != "BucketAlreadyOwnedByYou" {
			return fmt.Errorf("create bucket %s: %w", t.bucket, err)
		}
	case KindWebsite:
		wc := &types.WebsiteConfiguration{IndexDocument: &types.IndexDocument{Suffix: aws.String(t.set.index)}}
		if d := errorDoc(t.set, site); d != "" {
			wc.ErrorDocument = &types.ErrorDocument{Key: aws.String(d)}
		}
		if _, err := t.client.PutBucketWebsite(ctx, &s3.PutBucketWebsiteInput{Bucket: &t.bucket, WebsiteConfiguration: wc}); err != nil {
			return fmt.Errorf("set website of %s: %w", t.bucket, err)
		}
	case KindPolicy:
		if _, err := t.client.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &t.bucket, Policy: aws.String(policyDoc(t.bucket))}); err != nil {
			return fmt.Errorf("set policy of %s: %w", t.bucket, err)
		}
	default:
		return fmt.Errorf("unknown action %s %s", a.Op, a.Kind)
	}
	return nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// runObjects puts and deletes objects, at most concurrency at a time; the
// first failure cancels the rest and is returned.
func runObjects(ctx context.Context, t target, site local, acts []sdk.HostingAction, report func(sdk.HostingAction)) error {
	if len(acts) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan sdk.HostingAction)
	var wg sync.WaitGroup
	n := min(t.set.concurrency, len(acts))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if err := objectAction(ctx, t, site, &a); err != nil {
					cancel(err)
					continue
				}
				report(a)
			}
		}()
	}
feed:
	for _, a := range acts {
		select {
		case work <- a:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func objectAction(ctx context.Context, t target, site local, a *sdk.HostingAction) error {
	if a.Op == sdk.OpDelete {
		if _, err := t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &t.bucket, Key: aws.String(a.Key)}); err != nil {
			return fmt.Errorf("delete %s/%s: %w", t.bucket, a.Key, err)
		}
		return nil
	}
	if a.Detail == adoptDetail {
		return nil
	}
	f, ok := site.files[a.Key]
	if !ok {
		return fmt.Errorf("put %s/%s: the file left the site since the plan", t.bucket, a.Key)
	}
	// The open file is the body: seekable, so the SDK can retry it, and
	// never held in memory whole. Its MD5 is taken from what is read now.
	fh, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", t.bucket, a.Key, err)
	}
	defer fh.Close()
	h := md5.New()
	size, err := io.Copy(h, fh)
	if err == nil {
		_, err = fh.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("put %s/%s: read %s: %w", t.bucket, a.Key, f.Path, err)
	}
	sum := h.Sum(nil)
	a.Detail = hex.EncodeToString(sum)
	_, err = t.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &t.bucket,
		Key:           aws.String(a.Key),
		Body:          fh,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(sitefiles.ContentType(a.Key)),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:      map[string]string{siteMeta: t.site},
	})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", t.bucket, a.Key, err)
	}
	return nil
}
