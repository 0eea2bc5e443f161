package mesh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mycelium-mesh/mesh/core/rollout"
)

// StartRollout asks the mesh to roll an app out to a digest; the mesh
// follows the rollout and reverts it on its own. Follow it with
// FollowRollout.
func (c *Client) StartRollout(ctx context.Context, req DeployRequest) (DeployResult, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return DeployResult{}, fmt.Errorf("encode deploy request: %w", err)
	}
	var res DeployResult
	err = c.do(ctx, http.MethodPost, "/v1/deploy", bytes.NewReader(b), &res)
	return res, err
}

// GetRollout fetches one rollout by ID.
func (c *Client) GetRollout(ctx context.Context, id string) (rollout.Rollout, error) {
	var r rollout.Rollout
	err := c.do(ctx, http.MethodGet, "/v1/rollouts/"+url.PathEscape(id), nil, &r)
	return r, err
}

// LatestRollout fetches the newest rollout of app.
func (c *Client) LatestRollout(ctx context.Context, app string) (rollout.Rollout, error) {
	var r rollout.Rollout
	err := c.do(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/rollout", nil, &r)
	return r, err
}

// History fetches up to n rollouts of app (all kept ones when n <= 0),
// newest first; raw holds the JSON as received.
func (c *Client) History(ctx context.Context, app string, n int) (h []rollout.Rollout, raw json.RawMessage, err error) {
	path := "/v1/apps/" + url.PathEscape(app) + "/history"
	if n > 0 {
		path += "?limit=" + strconv.Itoa(n)
	}
	var out HistoryResponse
	if err = c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, raw, fmt.Errorf("decode history: %w", err)
	}
	return out.Rollouts, raw, nil
}

// Rollback asks the mesh to roll app back to a digest or manifest version
// from its history ("" = the previous good digest).
func (c *Client) Rollback(ctx context.Context, app, to string) (DeployResult, error) {
	b, err := json.Marshal(map[string]string{"to": to})
	if err != nil {
		return DeployResult{}, fmt.Errorf("encode rollback request: %w", err)
	}
	var res DeployResult
	err = c.do(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/rollback", bytes.NewReader(b), &res)
	return res, err
}

// FollowRollout polls a rollout until it reaches a terminal state or ctx
// ends, calling progress on every change of state or counts. Stopping to
// follow changes nothing on the mesh: it finishes or reverts the rollout on
// its own.
func (c *Client) FollowRollout(ctx context.Context, id string, progress func(rollout.Rollout)) (rollout.Rollout, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last rollout.Rollout
	for {
		r, err := c.GetRollout(ctx, id)
		if err != nil {
			return last, err
		}
		if progress != nil && (r.State != last.State || r.Progress != last.Progress) {
			progress(r)
		}
		last = r
		if r.State.Terminal() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("follow rollout %s: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}
