package sdk

import "syscall"

// setParentDeathSignal asks the kernel to SIGKILL this process when its
// parent exits (prctl PR_SET_PDEATHSIG).
func setParentDeathSignal() {
	const prSetPdeathsig = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGKILL), 0)
}
