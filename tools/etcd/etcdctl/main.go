// Command etcdctl is the etcd command-line client at the version
// tools/etcd/go.mod pins, used to inspect the clusters the tests start.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
