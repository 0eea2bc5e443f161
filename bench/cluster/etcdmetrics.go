package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// etcdMark is the etcd cluster's own metrics (each member's /metrics on
// its client URL) at one instant, summed or maxed over the members as
// each counter's meaning asks.
type etcdMark struct {
	at time.Time
	// Counters applied by every member alike (the raft log): the
	// leader's, which is the largest, is the cluster's.
	puts, deletes, proposals float64
	// Counters of what each member served itself: summed.
	txns, ranges, events, rxBytes, txBytes float64
	byMethod                               map[string]float64 // gRPC requests handled, by method, summed
	// Gauges: watchers and watch streams summed over the members; the
	// largest database and key count.
	watchers, streams, slow float64
	dbBytes, keys           float64
	// Disk: WAL fsyncs and backend commits, summed over the members
	// (seconds spent and how many), from etcd's histograms.
	fsyncSecs, fsyncs, commitSecs, commits float64
}

func markEtcd(ctx context.Context, urls []string) (etcdMark, error) {
	m := etcdMark{at: time.Now(), byMethod: map[string]float64{}}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, u := range urls {
		fams, err := scrape(ctx, hc, u+"/metrics")
		if err != nil {
			return m, fmt.Errorf("etcd metrics: %w", err)
		}
		v := func(name string) float64 { return sumOf(fams[name]) }
		m.puts = max(m.puts, v("etcd_mvcc_put_total"))
		m.deletes = max(m.deletes, v("etcd_mvcc_delete_total"))
		m.proposals = max(m.proposals, v("etcd_server_proposals_committed_total"))
		m.txns += v("etcd_mvcc_txn_total")
		m.ranges += v("etcd_mvcc_range_total")
		m.events += v("etcd_debugging_mvcc_events_total")
		m.rxBytes += v("etcd_network_client_grpc_received_bytes_total")
		m.txBytes += v("etcd_network_client_grpc_sent_bytes_total")
		m.watchers += v("etcd_debugging_mvcc_watcher_total")
		m.streams += v("etcd_debugging_mvcc_watch_stream_total")
		m.slow += v("etcd_debugging_mvcc_slow_watcher_total")
		m.dbBytes = max(m.dbBytes, v("etcd_mvcc_db_total_size_in_bytes"))
		m.keys = max(m.keys, v("etcd_debugging_mvcc_keys_total"))
		fs, fn := histOf(fams["etcd_disk_wal_fsync_duration_seconds"])
		cs, cn := histOf(fams["etcd_disk_backend_commit_duration_seconds"])
		m.fsyncSecs, m.fsyncs, m.commitSecs, m.commits = m.fsyncSecs+fs, m.fsyncs+fn, m.commitSecs+cs, m.commits+cn
		if f := fams["grpc_server_handled_total"]; f != nil {
			for _, mt := range f.GetMetric() {
				m.byMethod[labelOf(mt, "grpc_method")] += value(mt)
			}
		}
	}
	return m, nil
}

func sumOf(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		s += value(m)
	}
	return s
}

// histOf is the sum and count of a histogram family.
func histOf(f *dto.MetricFamily) (sum, count float64) {
	for _, m := range f.GetMetric() {
		if h := m.GetHistogram(); h != nil {
			sum += h.GetSampleSum()
			count += float64(h.GetSampleCount())
		}
	}
	return sum, count
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// etcdLoad is what etcd did between two marks.
type etcdLoad struct {
	secs                                   float64
	puts, deletes, proposals               float64
	txns, ranges, events, rxBytes, txBytes float64
	byMethod                               map[string]float64
	fsyncs, fsyncMean, commits, commitMean float64  // disk: counts and mean seconds
	end                                    etcdMark // the gauges at the end
}

func loadBetween(a, b etcdMark) etcdLoad {
	l := etcdLoad{secs: b.at.Sub(a.at).Seconds(), end: b, byMethod: map[string]float64{},
		puts: b.puts - a.puts, deletes: b.deletes - a.deletes, proposals: b.proposals - a.proposals,
		txns: b.txns - a.txns, ranges: b.ranges - a.ranges, events: b.events - a.events,
		rxBytes: b.rxBytes - a.rxBytes, txBytes: b.txBytes - a.txBytes}
	l.fsyncs, l.commits = b.fsyncs-a.fsyncs, b.commits-a.commits
	if l.fsyncs > 0 {
		l.fsyncMean = (b.fsyncSecs - a.fsyncSecs) / l.fsyncs
	}
	if l.commits > 0 {
		l.commitMean = (b.commitSecs - a.commitSecs) / l.commits
	}
	for k, v := range b.byMethod {
		l.byMethod[k] = v - a.byMethod[k]
	}
	return l
}
