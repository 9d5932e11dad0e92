package pgtest

import "syscall"

// orphanSignal asks Linux to stop the server (fast shutdown) when the test binary that started
// it dies without cleaning up (killed by a timeout), instead of leaving it running.
func orphanSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGINT }
