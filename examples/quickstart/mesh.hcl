# Quickstart mesh: three agents, the edge on 127.0.0.1:8080, one app.
# Paths are relative to this file. `make run` creates ../../.dev/dev.{key,pub}
# and packs ../../.dev/billing-v1.spore before starting the mesh.

data_dir = "../../.mesh/data"
run_dir  = "../../.mesh/run"
warmup   = "2s"
grace    = "5s"

trusted_keys = ["../../.dev/dev.pub"]

repo {
  dir = "../../.mesh/repo"
}

control {
  socket = "../../.mesh/control.sock"
}

edge {
  listen = "127.0.0.1:8080"
  admin  = "127.0.0.1:9090"
}

agents {
  count = 3
}

app "billing" {
  spore   = "../../.dev/billing-v1.spore"
  max     = 3
  restart = "on-failure"
}
