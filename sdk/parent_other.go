//go:build !linux

package sdk

// setParentDeathSignal has no kernel equivalent here; the poller in
// watchParent does the work.
func setParentDeathSignal() {}
