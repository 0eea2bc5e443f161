# Example mesh.hcl loading the weighted-static balancer plugin.
# Build the plugin next to this file first:
#
#   go build -o weighted-static .
#
# then `mesh plugins -config mesh.hcl` shows it, and `mesh run -config mesh.hcl`
# routes with it.

plugin "balancer" "weighted-static" {
  # Relative to this file. Pin the binary with its digest in production:
  #   sha256 = "<output of sha256sum weighted-static>"
  command = "./weighted-static"

  config {
    weights        = { "node-1" = 5, "node-2" = 1 }
    default_weight = 1
    mode           = "round_robin"
  }
}

# Every app that names no balancer of its own uses this one.
edge {
  balancer = "weighted-static"
}
