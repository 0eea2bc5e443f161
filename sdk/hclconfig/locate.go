package hclconfig

import (
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Locate finds where in body the attribute named by path is written, for
// an sdk.AttributeError's Attribute: "mode" at the top level,
// "cache.dir" inside a single block, "backend[1].weight" inside the
// second of repeated blocks. A path that names a block gives the block's
// header. It reports false when the path is not written in body (left to
// its default, or a name the schema does not have).
func Locate(body hcl.Body, path string) (hcl.Range, bool) {
	if body == nil || path == "" {
		return hcl.Range{}, false
	}
	steps := strings.Split(path, ".")
	for i, step := range steps {
		name, index := splitIndex(step)
		if index < 0 {
			return hcl.Range{}, false
		}
		last := i == len(steps)-1
		if last {
			content, _, _ := body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: name}}})
			if content != nil {
				if attr, ok := content.Attributes[name]; ok {
					return attr.Expr.Range(), true
				}
			}
		}
		content, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: name}}})
		if content == nil {
			return hcl.Range{}, false
		}
		blocks := content.Blocks.OfType(name)
		if index >= len(blocks) {
			return hcl.Range{}, false
		}
		if last {
			return blocks[index].DefRange, true
		}
		body = blocks[index].Body
	}
	return hcl.Range{}, false
}

// splitIndex splits "name[3]" into "name" and 3; a step without an index
// is index 0, a malformed one -1.
func splitIndex(step string) (string, int) {
	name, rest, ok := strings.Cut(step, "[")
	if !ok {
		return step, 0
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	if err != nil || !strings.HasSuffix(rest, "]") || n < 0 {
		return name, -1
	}
	return name, n
}
