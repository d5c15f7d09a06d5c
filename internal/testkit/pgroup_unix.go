//go:build unix

package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup sends SIGKILL to the child's process group, and to the
// groups of its own children: the emulator starts the function in a process
// group of its own, which would otherwise outlive it and complain on stdout.
func killProcessGroup(cmd *exec.Cmd) {
	pid := cmd.Process.Pid
	// The children go first: killed after their parent, they would have a moment
	// to notice it gone and say so.
	for _, c := range childPIDs(pid) {
		if pgid, err := syscall.Getpgid(c); err == nil && pgid == c && c != pid {
			_ = syscall.Kill(-c, syscall.SIGKILL)
		} else {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}

// childPIDs lists the processes whose parent is pid, from /proc where there is
// one (Linux); elsewhere none.
func childPIDs(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		if c, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			out = append(out, c)
		}
	}
	return out
}
