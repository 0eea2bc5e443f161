package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The reference proxies, from Debian's packages, each configured like the
// others: round-robin over the three workloads with keep-alive to them,
// /billing/ stripped from the path, X-Forwarded-* set, no access log, and
// the same number of worker processes or threads (-proxy-threads).

// extProxy is how to start one reference proxy.
type extProxy struct {
	key, name string
	bins      []string // where to look for the binary, PATH names first
	start     func(bin string, x extEnv) (*exec.Cmd, error)
	version   func(bin string) string
}

// extEnv is what every reference proxy is started with.
type extEnv struct {
	dir       string   // its own scratch directory
	port      int      // where it listens on 127.0.0.1
	upstreams []string // host:port of each workload
	threads   int      // worker processes or threads
	pin       string   // taskset CPU list
}

var extProxies = []extProxy{
	{key: "e1", name: "caddy", bins: []string{"caddy"}, start: caddyCmd,
		version: func(bin string) string { return lastField(bin, "version") }},
	{key: "e2", name: "nginx", bins: []string{"nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx"}, start: nginxCmd,
		version: func(bin string) string { return strings.TrimPrefix(lastField(bin, "-v"), "nginx/") }},
	{key: "e3", name: "haproxy", bins: []string{"haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"}, start: haproxyCmd,
		version: func(bin string) string {
			out, _ := exec.Command(bin, "-v").CombinedOutput()
			// "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
			f := strings.Fields(string(out))
			if len(f) >= 3 {
				return f[2]
			}
			return ""
		}},
}

// lookBin finds the first of names that exists, on PATH or as a path.
func lookBin(names []string) (string, bool) {
	for _, n := range names {
		if strings.HasPrefix(n, "/") {
			if _, err := os.Stat(n); err == nil {
				return n, true
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

// startExt starts one reference proxy and waits until it proxies.
func startExt(x extProxy, tmp string, upstreams []string, threads int, pin string) (string, *proc, string, error) {
	bin, ok := lookBin(x.bins)
	if !ok {
		return "", nil, "", fmt.Errorf("%s is not installed", x.name)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, "", err
	}
	env := extEnv{dir: filepath.Join(tmp, x.name), port: port, upstreams: upstreams, threads: threads, pin: pin}
	if err := os.MkdirAll(filepath.Join(env.dir, "logs"), 0o755); err != nil {
		return "", nil, "", fmt.Errorf("%s: %w", x.name, err)
	}
	cmd, err := x.start(bin, env)
	if err != nil {
		return "", nil, "", fmt.Errorf("%s: %w", x.name, err)
	}
	logf, err := os.Create(filepath.Join(env.dir, "logs", "stdout"))
	if err != nil {
		return "", nil, "", fmt.Errorf("%s: %w", x.name, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := start(x.name, cmd)
	if err != nil {
		return "", nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP("http://"+addr+"/billing/hello", 15*time.Second); err != nil {
		p.stop()
		return "", nil, "", fmt.Errorf("%s: %w (logs in %s)", x.name, err, env.dir)
	}
	return addr, p, x.version(bin), nil
}

func lastField(bin, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput()
	if err != nil {
		return ""
	}
	f := strings.Fields(strings.TrimSpace(string(out)))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func writeConf(x extEnv, name, conf string) (string, error) {
	file := filepath.Join(x.dir, name)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", file, err)
	}
	return file, nil
}

// caddyConf is Caddy's reverse_proxy with its defaults (keep-alive to the
// upstreams, no access log unless asked for).
func caddyConf(x extEnv) string {
	return fmt.Sprintf(`{
	admin off
	auto_https off
}

http://127.0.0.1:%d {
	handle_path /billing/* {
		reverse_proxy %s {
			lb_policy round_robin
		}
	}
}
`, x.port, strings.Join(x.upstreams, " "))
}

func caddyCmd(bin string, x extEnv) (*exec.Cmd, error) {
	file, err := writeConf(x, "Caddyfile", caddyConf(x))
	if err != nil {
		return nil, err
	}
	cmd := pinned(x.pin, bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+x.dir, "XDG_CONFIG_HOME="+x.dir, "HOME="+x.dir,
		"GOMAXPROCS="+strconv.Itoa(x.threads))
	return cmd, nil
}

// nginxConf: x.threads workers, keep-alive pool to the upstreams, client
// keep-alive for as many requests as a run sends, no access log.
func nginxConf(x extEnv) string {
	var servers strings.Builder
	for _, u := range x.upstreams {
		fmt.Fprintf(&servers, "\t\tserver %s;\n", u)
	}
	return fmt.Sprintf(`worker_processes %[4]d;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 1000000;
	upstream billing {
%[2]s		keepalive 256;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:%[3]d;
		location /billing/ {
			proxy_pass http://billing/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-Host $host;
		}
	}
}
`, x.dir, servers.String(), x.port, x.threads)
}

func nginxCmd(bin string, x extEnv) (*exec.Cmd, error) {
	file, err := writeConf(x, "nginx.conf", nginxConf(x))
	if err != nil {
		return nil, err
	}
	return pinned(x.pin, bin, "-p", x.dir, "-c", file, "-e", filepath.Join(x.dir, "logs", "error.log")), nil
}

// haproxyConf: x.threads threads, idle upstream connections shared by
// every client (http-reuse always), no log section at all.
func haproxyConf(x extEnv) string {
	var servers strings.Builder
	for i, u := range x.upstreams {
		fmt.Fprintf(&servers, "\tserver w%d %s\n", i+1, u)
	}
	return fmt.Sprintf(`global
	nbthread %[3]d
	maxconn 8192

defaults
	mode http
	option http-keep-alive
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	timeout http-keep-alive 30s

frontend edge
	bind 127.0.0.1:%[1]d
	default_backend billing

backend billing
	balance roundrobin
	http-reuse always
	option forwardfor
	http-request set-header X-Forwarded-Proto http
	http-request set-header X-Forwarded-Host %%[req.hdr(host)]
	http-request replace-path ^/billing(/.*)$ \1
%[2]s`, x.port, servers.String(), x.threads)
}

func haproxyCmd(bin string, x extEnv) (*exec.Cmd, error) {
	file, err := writeConf(x, "haproxy.cfg", haproxyConf(x))
	if err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		return nil, errors.New("config check failed: " + strings.TrimSpace(string(out)))
	}
	// -db: stay in the foreground, one process whose threads serve.
	return pinned(x.pin, bin, "-db", "-f", file), nil
}
