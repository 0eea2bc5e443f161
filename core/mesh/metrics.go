package mesh

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the mesh's own state on the edge's /metrics: instances
// by state, desired and ready counts per app, and plugin health. Values are
// read from Status at scrape time.
type collector struct {
	m *Mesh

	instances, desired, ready, degraded *prometheus.Desc
	pluginUp, pluginRestarts            *prometheus.Desc
	rolloutActive, rolloutsEnded        *prometheus.Desc
}

func newCollector(m *Mesh) *collector {
	return &collector{
		m:              m,
		instances:      prometheus.NewDesc("mesh_instances", "Workload instances by app, node and state.", []string{"app", "node", "state"}, nil),
		desired:        prometheus.NewDesc("mesh_app_desired_instances", "Instances the mesh aims for, by app.", []string{"app"}, nil),
		ready:          prometheus.NewDesc("mesh_app_ready_instances", "Ready instances of the app's current digest.", []string{"app"}, nil),
		degraded:       prometheus.NewDesc("mesh_app_degraded", "1 when the app has fewer endpoints than its min.", []string{"app"}, nil),
		pluginUp:       prometheus.NewDesc("mesh_plugin_up", "1 while the plugin process is running and configured.", []string{"kind", "name"}, nil),
		pluginRestarts: prometheus.NewDesc("mesh_plugin_restarts_total", "Restarts of the plugin process since the mesh started.", []string{"kind", "name"}, nil),
		rolloutActive:  prometheus.NewDesc("mesh_app_rollout_active", "1 while the app has a rollout in progress.", []string{"app"}, nil),
		rolloutsEnded:  prometheus.NewDesc("mesh_rollouts_ended_total", "Rollouts ended since the mesh started, by app and final state.", []string{"app", "state"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.instances, c.desired, c.ready, c.degraded, c.pluginUp, c.pluginRestarts, c.rolloutActive, c.rolloutsEnded} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Status()
	type key struct{ app, node, state string }
	counts := map[key]int{}
	for _, in := range st.Instances {
		counts[key{in.App, in.NodeID, in.State}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(n), k.app, k.node, k.state)
	}
	for _, a := range st.Apps {
		ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(a.Desired), a.Name)
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(a.Ready), a.Name)
		deg := 0.0
		if a.Degraded {
			deg = 1
		}
		ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, deg, a.Name)
		active := 0.0
		if a.Rollout != nil {
			active = 1
		}
		ch <- prometheus.MustNewConstMetric(c.rolloutActive, prometheus.GaugeValue, active, a.Name)
	}
	if c.m.rollouts != nil {
		for k, n := range c.m.rollouts.endedCounts() {
			ch <- prometheus.MustNewConstMetric(c.rolloutsEnded, prometheus.CounterValue, float64(n), k.app, string(k.state))
		}
	}
	for _, p := range st.Plugins {
		up := 0.0
		if p.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.pluginUp, prometheus.GaugeValue, up, p.Kind, p.Name)
		ch <- prometheus.MustNewConstMetric(c.pluginRestarts, prometheus.CounterValue, float64(p.Restarts), p.Kind, p.Name)
	}
}
