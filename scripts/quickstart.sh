#!/usr/bin/env bash
# Quickstart: make a development key, pack and publish the sample workload,
# then start a mesh with three agents and the edge on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."

mesh=bin/mesh
mkdir -p .dev
if [ ! -f .dev/dev.key ]; then
	echo "==> creating development key pair in .dev/ (trusted by examples/quickstart/mesh.hcl)"
	"$mesh" keygen -out .dev/dev
fi
# Pack only what changed: a spore repacked with a new created_at has a new
# digest, and the mesh would take that as a changed app block and roll back a
# version deployed since.
hello_sum="$(sha256sum bin/hello | cut -d' ' -f1)"
for v in v1 v2; do
	spore=".dev/billing-$v.spore"
	manifest="examples/quickstart/billing-$v.json"
	if [ -f "$spore" ] && [ "$spore" -nt "$manifest" ] && [ "$spore" -nt .dev/dev.key ] &&
		"$mesh" inspect "$spore" 2>/dev/null | grep -q "\"binary_sha256\": \"$hello_sum\""; then
		continue
	fi
	"$mesh" pack -binary bin/hello -manifest "$manifest" -key .dev/dev.key -out "$spore" >/dev/null
	echo "==> packed $spore"
done
digest="$("$mesh" publish -repo .mesh/repo .dev/billing-v1.spore)"
echo "==> billing v1 published as $digest"
cat <<MSG
==> starting the mesh (Ctrl-C stops it and every workload)

    curl -i http://127.0.0.1:8080/billing/hello
    bin/mesh status -config examples/quickstart/mesh.hcl
    bin/mesh deploy -config examples/quickstart/mesh.hcl -app billing -spore .dev/billing-v2.spore

MSG
exec "$mesh" run -config examples/quickstart/mesh.hcl "$@"
