// Command etcd is the etcd server at the version tools/etcd/go.mod pins,
// built for the clustered fabric's tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
