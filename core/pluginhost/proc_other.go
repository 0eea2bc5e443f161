//go:build !unix

package pluginhost

import "syscall"

func newProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}
