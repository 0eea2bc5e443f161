package hostings3

import (
	"errors"
	"net/http"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/mycelium-mesh/mesh/plugins/internal/backoff"
)

func responseError(code int, retryAfter string) error {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code, Header: h}},
		Err:      errors.New("answer"),
	}}
}

func TestRetryPolicyOfTheS3Client(t *testing.T) {
	pol := backoff.Policy{Attempts: 3, Base: 10 * time.Millisecond, Max: 20 * time.Second}
	d, err := delayer(pol).BackoffDelay(1, responseError(503, "3"))
	if err != nil || d != 3*time.Second {
		t.Fatalf("Retry-After 3 on a 503: waited %v (%v)", d, err)
	}
	if d, _ := delayer(pol).BackoffDelay(1, responseError(500, "")); d > 10*time.Millisecond {
		t.Fatalf("no Retry-After: waited %v, above the first ceiling", d)
	}
	for code, want := range map[int]bool{429: true, 500: true, 503: true, 400: false, 403: false, 404: false, 409: false} {
		if got := statusOf(responseError(code, "")); got != code {
			t.Fatalf("statusOf = %d, want %d", got, code)
		}
		if got := newRetryer(pol).IsErrorRetryable(responseError(code, "")); got != want {
			t.Errorf("the S3 client retries a %d: %v, want %v", code, got, want)
		}
	}
}
