package etcd_test

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
	"github.com/mycelium-mesh/mesh/internal/etcdtest"
)

// TestReleaseCutOff: a host cut off from etcd stops its instances without
// waiting on etcd. Releasing a claim returns after one attempt (it used to
// retry until the Store closed, which the agent stopping the instance
// waited for, so a cut-off agent never stopped), and closing the Store
// ends the retries.
func TestReleaseCutOff(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c.Endpoints(), newPrefix())
	if err := s.PublishPlan(fabric.Plan{AppName: "web", Digest: fabrictest.Digest(1), Max: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Acquire("web", "n1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Members[0].Kill() // etcd out of reach
	released := make(chan struct{})
	go func() { l.Release(); close(released) }()
	select {
	case <-released:
	case <-time.After(30 * time.Second):
		t.Fatal("Release still waiting for etcd after 30s")
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close still waiting after 30s")
	}
}
