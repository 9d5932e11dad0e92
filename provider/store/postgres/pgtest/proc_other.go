//go:build !linux

package pgtest

import "syscall"

// orphanSignal does nothing where the system cannot signal a child when its parent dies.
func orphanSignal(*syscall.SysProcAttr) {}
