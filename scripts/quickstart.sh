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
for v in v1 v2; do
	"$mesh" pack -binary bin/hello -manifest "examples/quickstart/billing-$v.json" \
		-key .dev/dev.key -out ".dev/billing-$v.spore" >/dev/null
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
