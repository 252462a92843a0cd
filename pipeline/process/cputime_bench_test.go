//go:build unix

package process

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used so far, user and
// system, all its threads (the garbage collector's too), or 0 if it cannot
// tell. On a shared machine a benchmark's wall time counts the time other
// processes held the cores; its CPU time does not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
