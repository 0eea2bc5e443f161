package pluginhost

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/hclconfig"
)

// DecodeConfig decodes a plugin's `config { ... }` block against the
// schema the plugin declares (see package sdk/hclconfig, which plugin
// tests share). A nil body is an empty block. Unknown attributes, missing
// required ones, values of the wrong type and malformed durations come
// back as diagnostics pointing at mesh.hcl. Absent attributes take the
// schema's defaults.
func DecodeConfig(schema sdk.Schema, body hcl.Body) (sdk.Config, hcl.Diagnostics) {
	return hclconfig.Decode(schema, body, nil)
}

// DecodeConfigContext is DecodeConfig with an evaluation context for
// expressions (functions and variables mesh.hcl allows).
func DecodeConfigContext(schema sdk.Schema, body hcl.Body, ectx *hcl.EvalContext) (sdk.Config, hcl.Diagnostics) {
	return hclconfig.Decode(schema, body, ectx)
}
