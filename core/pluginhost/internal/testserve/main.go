// Command testserve serves the bundled plugins exactly like the hidden
// `mesh plugin-serve KIND NAME` mode, so the host's tests do not depend on
// the whole CLI.
package main

import (
	"fmt"
	"os"

	_ "github.com/mycelium-mesh/mesh/plugins/bundled" // the plugins to serve

	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != pluginhost.ServeArg {
		fmt.Fprintf(os.Stderr, "usage: %s %s KIND NAME\n", os.Args[0], pluginhost.ServeArg)
		os.Exit(2)
	}
	if err := pluginhost.ServeBundled(os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
