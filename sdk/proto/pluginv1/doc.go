// Package pluginv1 holds the generated protobuf and gRPC code of the plugin
// API, version 1: the Base service every plugin serves and one service per
// plugin kind (Repo, Balancer, Health). Regenerate with `make proto`.
package pluginv1
