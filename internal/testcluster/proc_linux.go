package testcluster

import "syscall"

// sysProcAttr puts a child in its own process group and kills it when the
// test binary dies, so a crashed test leaves no control plane behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
