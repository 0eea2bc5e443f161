# mesh.hcl — annotated reference of every setting Mycelium Mesh understands.
#
# Every attribute and block is optional; the values written here are the
# defaults unless a comment says otherwise. Check a file with
#
#     mesh validate examples/mesh.hcl
#
# Conventions:
#   * Relative paths are resolved against the directory of this file, not the
#     directory mesh is started from.
#   * Durations are strings: "250ms", "2s", "1m30s".
#   * env("NAME") reads an environment variable anywhere an expression is
#     allowed and yields "" when it is unset.
#   * Unknown attributes and blocks are errors, reported with file and line.

# Where the control fabric keeps desired state (plans, budgets) across restarts.
data_dir = "./.mesh/data"

# Where agents extract spores and keep per-instance directories and logs:
# <run_dir>/<node id>/<app>-<random>/.
run_dir = "./.mesh/run"

# Blue/green: how long the previous instance keeps draining after the new one
# is ready, before it is stopped. `mesh run -warmup` overrides it.
warmup = "2s"

# Stopping an instance: SIGTERM to its process group, then SIGKILL after grace.
grace = "5s"

# A rollout that has not got every desired instance ready by then counts as
# failed, and the mesh reverts the app to its last good digest. An app block
# may set its own.
progress_deadline = "5m"

# Each instance of a new version must stay ready this long before the
# rollout succeeds; one that crashes in that time fails (and reverts) it.
# "0s" counts an instance at its health gate. An app block may set its own.
min_healthy = "10s"

# Spores are run only when signed by one of these keys. Each entry is either
# the key text printed by `mesh keygen` ("ed25519:<base64>") or the path of a
# .pub file written by it, e.g. "./keys/dev.pub" (the file must exist).
# A key carried inside a spore is never trusted on its own.
trusted_keys = [
  "ed25519:7ukElwFPq4ulD8TJBJoZR2znpNTTQCIzRwU4DQc9kwU=",
]

# trace, debug, info, warn, error or off.
log_level = "info"

# The content-addressed spore store. `dir` is the local store and verified
# cache; `backend` optionally names a repo plugin that blobs are also pushed to
# and fetched from on a local miss (everything fetched is re-hashed). The
# default "" keeps blobs local only; "fs" is the bundled directory backend.
repo {
  dir     = "./.mesh/repo"
  backend = ""
}

# The HTTP edge: routes /<app>/... to the app's instances.
edge {
  listen       = "127.0.0.1:8080" # host:port; ":8080" listens on all interfaces
  admin        = "127.0.0.1:9090" # Prometheus /metrics; "" disables it
  log_interval = "10s"            # how often per-app request and 5xx counters are logged

  # Balancer plugin used by apps that do not name one: "round-robin" or
  # "least-loaded" (bundled), or the name of a plugin "balancer" block.
  balancer = "round-robin"

  read_header_timeout = "5s"  # a client must send its headers within this
  idle_timeout        = "90s" # keep-alive connections idle longer are closed
  upstream_timeout    = "30s" # response headers from an instance must arrive within this
  max_header_bytes    = 65536 # larger request headers get 431

  # Hostile clients and slow endpoints (README: "Edge behaviour with hostile
  # clients").
  request_body_timeout = "60s" # a request body must arrive within this (408)
  write_timeout        = "60s" # a non-streaming answer must be relayed within this
  stream_idle_timeout  = "5m"  # streams and upgraded connections: longest silence
  max_connections      = 0     # client connections at once; 0 = from the open file limit
  max_conns_per_endpoint = 1024 # edge connections to one endpoint, busy and idle; more requests wait
  trusted_proxies      = []    # e.g. ["10.0.0.0/8"]: peers whose X-Forwarded-* count
}

# The control API used by `mesh deploy`, `mesh status` and `mesh reload`.
control {
  socket = "./.mesh/control.sock" # unix socket, mode 0600; "" disables it
  # Optional TCP listener. It can start binaries, so it requires a bearer
  # token; leaving MESH_TOKEN unset while listen is set is an error.
  listen = ""
  token  = env("MESH_TOKEN")
}

# The agents (nodes) running in this mesh: either a count, which names them
# n1, n2, ..., or one node block per agent — not both.
agents {
  count = 3
  # node "edge-a" {}
  # node "edge-b" {}

  # How long a new instance may take to become healthy before it counts as
  # failed (the previous version, if any, keeps serving).
  health_timeout = "6s"
}

# How agents check instances.
health {
  plugin  = "http"    # bundled "http" (GET path, 200 = healthy) or "tcp", or a plugin "health" block
  path    = "/health" # default for apps that set no health_path
  timeout = "1s"      # deadline of a single check
}

# Plugin blocks configure bundled plugins or declare external ones:
#
#   plugin "<kind>" "<name>" {
#     command = "./bin/my-lb"  # external executable; omit for bundled plugins
#     sha256  = "<64 hex>"     # optional: refuse to run a command with other bytes
#     config { ... }           # decoded against the schema the plugin declares
#   }
#
# <kind> is repo, balancer or health. Bundled: repo "fs"; balancer
# "round-robin", "least-loaded"; health "http", "tcp".

plugin "balancer" "least-loaded" {
  config {
    max_weight      = 100 # weight of the fastest healthy endpoint
    min_weight      = 1   # floor, so slow endpoints are still probed
    failure_penalty = 4   # how strongly failures reduce an endpoint's weight
  }
}

plugin "health" "http" {
  config {
    expect_status = 200
  }
}

# An external balancer built from examples/balancer-plugin:
#
# plugin "balancer" "my-lb" {
#   command = "./bin/my-lb"
#   sha256  = "..."
#   config {}
# }

# One block per app. The label is the app name and the first segment of its
# URL path: GET /billing/hello reaches an instance of billing as GET /hello.
app "billing" {
  # Exactly one of:
  digest = "sha256:fac0a478370c10defa2ec7a5fc18d60c4bc1caf2101f1f0697fce68dbd0b239d" # a spore already published with `mesh publish`
  # spore = "./billing.spore"  # a spore file, published when mesh starts

  min  = 1 # default 1
  max  = 3 # default: min
  port = 0 # 0 = each instance gets a free port (passed as PORT)

  # What an agent does when an instance exits: never | on-failure | always.
  restart = "on-failure"

  strip_prefix = true           # false forwards /billing/hello unchanged
  balancer     = "least-loaded" # default: edge.balancer
  health_path  = "/health"      # default: health.path

  progress_deadline = "2m" # default: the top-level progress_deadline
  min_healthy       = "5s" # default: the top-level min_healthy

  # Limits across all agents; 0 means unlimited. cpu_milli and memory_mb are
  # charged with what each spore's manifest declares under resources.nutrients.
  budget {
    max_instances = 3
    cpu_milli     = 2000
    memory_mb     = 1024
  }
}
