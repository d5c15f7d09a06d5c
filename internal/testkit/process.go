package testkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"time"
)

// process is a child started in its own process group, so that stopping it
// also ends what it started (the emulator's runtime, moto's workers), and so
// that a terminal's Ctrl-C reaches only the parent, which then cleans up.
type process struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited and its output is read
	waitErr  error
	stopOnce sync.Once
}

func startProcess(cmd *exec.Cmd, out io.Writer) (*process, error) {
	cmd.Stdout, cmd.Stderr = out, out // one writer: exec shares one pipe and keeps the order
	setProcessGroup(cmd)
	// Should a grandchild escape the group and keep the pipe open, Wait still returns.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits, ctx ends or
// timeout passes.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, what string, ready func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready: %v", p.cmd.Path, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%s not ready within %s: %v", what, timeout, err)
		case <-t.C:
		}
	}
}

// waitDial waits until addr accepts TCP connections.
func (p *process) waitDial(ctx context.Context, addr string, timeout time.Duration) error {
	return p.waitReady(ctx, timeout, addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// stop kills the process group and waits for the exit; once.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
		default:
			killProcessGroup(p.cmd)
			<-p.exited
		}
	})
}
