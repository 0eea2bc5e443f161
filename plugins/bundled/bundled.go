// Package bundled registers the plugins compiled into the mesh binary with
// core/pluginreg. A binary (or a test) that needs them imports it for its
// side effect:
//
//	import _ "github.com/mycelium-mesh/mesh/plugins/bundled"
//
// To bundle another plugin, add its constructor to the list below: one
// line, nothing else to change.
package bundled

import (
	"github.com/mycelium-mesh/mesh/core/pluginreg"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
	"github.com/mycelium-mesh/mesh/plugins/healthtcp"
	"github.com/mycelium-mesh/mesh/plugins/hostingapp"
	"github.com/mycelium-mesh/mesh/plugins/hostingcfpages"
	"github.com/mycelium-mesh/mesh/plugins/hostinglocal"
	"github.com/mycelium-mesh/mesh/plugins/hostings3"
	"github.com/mycelium-mesh/mesh/plugins/leastloaded"
	"github.com/mycelium-mesh/mesh/plugins/repofs"
	"github.com/mycelium-mesh/mesh/plugins/repohttp"
	"github.com/mycelium-mesh/mesh/plugins/roundrobin"
	"github.com/mycelium-mesh/mesh/sdk"
)

func init() {
	pluginreg.Register(
		func() sdk.Plugin { return repofs.New() },
		func() sdk.Plugin { return repohttp.New() },
		func() sdk.Plugin { return roundrobin.New() },
		func() sdk.Plugin { return leastloaded.New() },
		func() sdk.Plugin { return healthhttp.New() },
		func() sdk.Plugin { return healthtcp.New() },
		func() sdk.Plugin { return hostinglocal.New() },
		func() sdk.Plugin { return hostingapp.New() },
		func() sdk.Plugin { return hostings3.New() },
		func() sdk.Plugin { return hostingcfpages.New() },
	)
}
