//go:build !unix

package deploy

import (
	"os/exec"
	"time"
)

// killGroupOnCancel bounds how long a canceled command's output is waited for.
func killGroupOnCancel(cmd *exec.Cmd) { cmd.WaitDelay = 5 * time.Second }
