package hostings3

import (
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mycelium-mesh/mesh/plugins/internal/backoff"
)

// newClient builds the S3 client: static credentials, the configured
// endpoint and addressing, a per-attempt timeout and the shared retry
// policy (429, 5xx and connection failures retried with jittered backoff
// honouring Retry-After; other 4xx answers never retried).
func newClient(s settings) *s3.Client {
	pol := backoff.Policy{Attempts: s.attempts, Base: 200 * time.Millisecond, Max: 20 * time.Second}
	retryer := newRetryer(pol)
	cfg := aws.Config{
		Region:      s.region,
		Credentials: credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, s.sessionToken),
		HTTPClient:  awshttp.NewBuildableClient().WithTimeout(s.timeout),
		Retryer:     func() aws.Retryer { return retryer },
		// Content-MD5 is sent on every put; the newer default checksums are
		// not understood by every S3-compatible server.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
		o.UsePathStyle = s.pathStyle
	})
}

// newRetryer is the S3 client's retry policy: connection failures and
// 429/5xx answers are retried, nothing else.
func newRetryer(pol backoff.Policy) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = pol.Tries()
		o.RateLimiter = ratelimit.None
		o.Retryables = []retry.IsErrorRetryable{
			retry.RetryableConnectionError{},
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if code := statusOf(err); code != 0 {
					return aws.BoolTernary(backoff.Retryable(code))
				}
				return aws.UnknownTernary
			}),
		}
		o.Backoff = delayer(pol)
	})
}

// delayer waits as the policy says, honouring a Retry-After answer.
func delayer(pol backoff.Policy) retry.BackoffDelayer {
	return retry.BackoffDelayerFunc(func(attempt int, err error) (time.Duration, error) {
		return pol.Delay(attempt, retryAfterOf(err)), nil
	})
}

// statusOf returns the HTTP status of a failed S3 call, or 0.
func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func retryAfterOf(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("Retry-After")
	}
	return ""
}

func isStatus(err error, code int) bool { return statusOf(err) == code }
