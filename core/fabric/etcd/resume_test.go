package etcd_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

// TestWatchResumes breaks a Store's watch while plans change, then lets it
// resume: from the next revision when etcd still has it, and by a full
// reload when the revisions it missed were compacted. Either way its
// subscribers receive every change, deletions included.
func TestWatchResumes(t *testing.T) {
	c := etcdtest.Start(t, 3)
	raw := c.Client(t)
	for _, compact := range []bool{false, true} {
		name := map[bool]string{false: "from revision", true: "after compaction"}[compact]
		t.Run(name, func(t *testing.T) {
			prefix := newPrefix()
			writer, reader := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
			for _, app := range []string{"a", "b"} {
				if err := writer.PublishPlan(fabric.Plan{AppName: app, Digest: fabrictest.Digest(1)}); err != nil {
					t.Fatal(err)
				}
			}
			plans := reader.Subscribe(t.Context())
			seen := map[string]fabric.Plan{}
			for len(seen) < 2 || seen["a"].Digest == "" || seen["b"].Digest == "" {
				p := nextPlan(t, plans)
				seen[p.AppName] = p
			}

			resume := reader.PauseWatch()
			if err := writer.PublishPlan(fabric.Plan{AppName: "a", Digest: fabrictest.Digest(2)}); err != nil {
				t.Fatal(err)
			}
			if err := writer.DeletePlan("b"); err != nil {
				t.Fatal(err)
			}
			if err := writer.PublishPlan(fabric.Plan{AppName: "c", Digest: fabrictest.Digest(3)}); err != nil {
				t.Fatal(err)
			}
			if compact {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				st, err := raw.Get(ctx, "compaction-probe")
				if err == nil {
					_, err = raw.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical())
				}
				cancel()
				if err != nil {
					t.Fatalf("compact: %v", err)
				}
			}
			resume()
			want := map[string]string{"a": fabrictest.Digest(2), "b": "", "c": fabrictest.Digest(3)}
			for !matches(seen, want) {
				p := nextPlan(t, plans)
				seen[p.AppName] = p
			}
			wantReloads := map[bool]int{false: 1, true: 2}[compact]
			if n := reader.Reloads(); n != wantReloads {
				t.Fatalf("reader loaded the whole fabric %d times, want %d", n, wantReloads)
			}
			if ps := reader.Plans(); len(ps) != 2 || ps[0].AppName != "a" || ps[1].AppName != "c" {
				t.Fatalf("reader's plans after resuming = %+v, want a and c", ps)
			}
		})
	}
}

func matches(seen map[string]fabric.Plan, want map[string]string) bool {
	for app, d := range want {
		if p, ok := seen[app]; !ok || p.Digest != d {
			return false
		}
	}
	return true
}

func nextPlan(t *testing.T, ch <-chan fabric.Plan) fabric.Plan {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return p
	case <-time.After(fabrictest.Wait):
		t.Fatal("no plan delivered")
	}
	return fabric.Plan{}
}

// TestLeaseLost revokes a Store's lease behind its back, as etcd does when
// a host was cut off for longer than the TTL: the Store's claim is revoked
// (its slot is gone), and it takes a new lease and writes its endpoint
// again, so the host is routable once it is back.
func TestLeaseLost(t *testing.T) {
	c := etcdtest.Start(t, 3)
	raw := c.Client(t)
	prefix := newPrefix()
	s, edge := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	if err := s.PublishPlan(fabric.Plan{AppName: "web", Digest: fabrictest.Digest(1), Max: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Acquire("web", "n1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ep := fabric.Endpoint{AppName: "web", NodeID: "n1", URL: "http://127.0.0.1:1"}
	s.RegisterEndpoint(ep)
	watch := edge.WatchEndpoints(t.Context())
	waitSnap(t, watch, func(snap fabric.Snapshot) bool { return len(snap.Apps["web"]) == 1 })

	old := s.LeaseID()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = raw.Revoke(ctx, clientv3.LeaseID(old))
	cancel()
	if err != nil {
		t.Fatalf("revoke lease: %v", err)
	}
	waitSnap(t, watch, func(snap fabric.Snapshot) bool { return len(snap.Apps["web"]) == 0 })
	select {
	case <-l.Revoked():
	case <-time.After(fabrictest.Wait):
		t.Fatal("claim under the lost lease was not revoked")
	}
	waitSnap(t, watch, func(snap fabric.Snapshot) bool {
		return len(snap.Apps["web"]) == 1 && snap.Apps["web"][0] == ep
	})
	if s.LeaseID() == old {
		t.Fatal("Store still names the revoked lease")
	}
	if u := edge.Usage("web"); u.Instances != 0 {
		t.Fatalf("usage after the lease was lost = %+v, want none", u)
	}
}
