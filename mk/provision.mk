# Site provisioning (core/provision): the wire fixtures are encoded by the
# reference C++ Cap'n Proto tool from their text sources and committed; this
# regenerates them (installing Debian's capnproto when it is missing).

.PHONY: provision-fixtures

provision-fixtures: proto-capnp-tools
	core/provision/testdata/gen.sh
