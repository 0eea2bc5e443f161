// Package provision makes websites exist as SporeConfig messages describe
// them.
//
// The pipeline has three stages, each in its own files:
//
//   - Framing and decoding (stream.go, decode.go): a stream of packed Cap'n
//     Proto messages is cut into messages under a size limit, and each
//     message is decoded once, here and nowhere else, into the plain Go model
//     of model.go. Decoding tells an absent struct from a zero one, requires
//     site.id and hosting, range-checks every enum and bounds every text, so
//     that everything after it works on values that are known to be sound.
//     Each refusal is a *FieldError naming the field.
//   - Reconciling (engine.go): per site, level-triggered observe → plan →
//     apply through a hosting backend; work for one site is serialised and
//     coalesced, sites proceed in parallel.
//   - Reporting (report.go): one JSON line per message for orchestrators.
//
// Cap'n Proto types never travel past decode.go.
package provision
