package pluginhost_test

import "syscall"

func setpgid() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
