package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
		ok   bool
	}{
		{nil, spread{}, false},
		{[]float64{3}, spread{3, 3, 3}, true},
		{[]float64{5, 1, 3}, spread{3, 1, 5}, true},
		{[]float64{4, 1, 2, 3}, spread{2.5, 1, 4}, true},
	} {
		got, ok := spreadOf(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("spreadOf(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFmtSecsAndHostOf(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{4400 * time.Microsecond, "4.4 ms"}, {437 * time.Millisecond, "437 ms"},
		{1920 * time.Millisecond, "1.92 s"}, {111100 * time.Millisecond, "111.1 s"}, {0, "0 ms"},
	} {
		if got := ms(tc.d); got != tc.want {
			t.Errorf("ms(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"http://10.64.123.14:41234": "10.64.123.14", "http://[::1]:80": "::1", "127.0.0.2:9": "127.0.0.2",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEtcdMarks reads two members' metrics pages over real sockets and
// checks which counters are maxed (applied by every member) and which
// summed (served by each), and the rates and means between two marks.
func TestEtcdMarks(t *testing.T) {
	page := func(puts, txns, watchers, fsyncSum, fsyncN float64) string {
		return fmt.Sprintf(`# TYPE etcd_mvcc_put_total counter
etcd_mvcc_put_total %g
# TYPE etcd_mvcc_txn_total counter
etcd_mvcc_txn_total %g
# TYPE etcd_debugging_mvcc_watcher_total gauge
etcd_debugging_mvcc_watcher_total %g
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} %g
etcd_disk_wal_fsync_duration_seconds_sum %g
etcd_disk_wal_fsync_duration_seconds_count %g
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Txn"} %g
`, puts, txns, watchers, fsyncN, fsyncSum, fsyncN, txns)
	}
	var pages [2]string
	var srvs []string
	for i := range pages {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, pages[i])
		}))
		defer srv.Close()
		srvs = append(srvs, srv.URL)
	}
	ctx := context.Background()
	pages[0], pages[1] = page(10, 5, 2, 0.1, 10), page(9, 7, 3, 0.2, 10)
	a, err := markEtcd(ctx, srvs)
	if err != nil {
		t.Fatal(err)
	}
	pages[0], pages[1] = page(110, 15, 4, 0.5, 20), page(109, 27, 5, 0.4, 20)
	b, err := markEtcd(ctx, srvs)
	if err != nil {
		t.Fatal(err)
	}
	b.at = a.at.Add(2 * time.Second)
	l := loadBetween(a, b)
	if l.puts != 100 || l.txns != 30 || l.byMethod["Txn"] != 30 || l.end.watchers != 9 || l.fsyncs != 20 {
		t.Errorf("load = puts %g txns %g Txn calls %g watchers %g fsyncs %g; want 100, 30, 30, 9, 20",
			l.puts, l.txns, l.byMethod["Txn"], l.end.watchers, l.fsyncs)
	}
	if got := rate(l.puts, l.secs); got != 50 {
		t.Errorf("put rate %g/s, want 50", got)
	}
	if l.fsyncMean < 0.0299 || l.fsyncMean > 0.0301 { // (0.9-0.3) s over 20 syncs
		t.Errorf("fsync mean %g s, want 0.03", l.fsyncMean)
	}
}

func TestSubtree(t *testing.T) {
	all := map[int]procEntry{1: {0, 1}, 10: {1, 2}, 11: {10, 3}, 12: {10, 4}, 20: {1, 5}}
	got := subtree(all, 10)
	sort.Ints(got[1:])
	if want := []int{10, 11, 12}; !slices.Equal(got, want) {
		t.Fatalf("subtree(10) = %v, want %v", got, want)
	}
	if got := subtree(all, 99); !slices.Equal(got, []int{99}) {
		t.Fatalf("subtree of an unknown pid = %v, want [99]", got)
	}
}
