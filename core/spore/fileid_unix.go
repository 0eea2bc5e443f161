//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package spore

import (
	"os"
	"syscall"
)

func statIDs(fi os.FileInfo) (dev, ino uint64, ctime int64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0
	}
	return uint64(st.Dev), uint64(st.Ino), ctimeOf(st)
}
