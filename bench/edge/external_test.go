package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceConfigs checks that every reference proxy is configured as
// the table's header says, and that the proxy itself accepts the file.
func TestReferenceConfigs(t *testing.T) {
	dir := t.TempDir()
	x := extEnv{dir: dir, port: 18080, upstreams: []string{"127.0.0.1:18081", "127.0.0.1:18082"}, threads: 2}
	for _, tc := range []struct {
		name  string
		conf  string
		want  []string
		check []string // command to validate the file, "" when no such mode
		file  string
	}{
		{"nginx", nginxConf(x), []string{"worker_processes 2;", "access_log off;", "keepalive_requests 1000000;", "keepalive 256;",
			"proxy_http_version 1.1;", `proxy_set_header Connection "";`, "server 127.0.0.1:18081;", "listen 127.0.0.1:18080;"},
			[]string{"-t", "-p", dir, "-c"}, "nginx.conf"},
		{"haproxy", haproxyConf(x), []string{"nbthread 2", "http-reuse always", "balance roundrobin", "option forwardfor",
			`replace-path ^/billing(/.*)$ \1`, "server w2 127.0.0.1:18082", "bind 127.0.0.1:18080"},
			[]string{"-c", "-f"}, "haproxy.cfg"},
		{"caddy", caddyConf(x), []string{"handle_path /billing/*", "lb_policy round_robin", "127.0.0.1:18081 127.0.0.1:18082"},
			[]string{"validate", "--adapter", "caddyfile", "--config"}, "Caddyfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, w := range tc.want {
				if !strings.Contains(tc.conf, w) {
					t.Errorf("config lacks %q:\n%s", w, tc.conf)
				}
			}
			if strings.Contains(tc.conf, "\nlog ") || strings.Contains(tc.conf, "\tlog ") {
				t.Errorf("config logs requests:\n%s", tc.conf)
			}
			var bins []string
			for _, p := range extProxies {
				if p.name == tc.name {
					bins = p.bins
				}
			}
			bin, ok := lookBin(bins)
			if !ok {
				t.Skipf("%s is not installed (make bench-edge installs it); config not validated", tc.name)
			}
			file, err := writeConf(x, tc.file, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "nginx" {
				if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, append(tc.check, file)...)
			cmd.Env = append(cmd.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s rejects its config: %v\n%s\n%s", tc.name, err, out, tc.conf)
			}
		})
	}
}
