package testkit

import (
	"context"
	"fmt"
	"io"
	"time"

	"acronismfa/internal/acronis/sim"
)

// Local is a deployment on this machine, as the end-to-end tests and the demo
// run it: Acronis from a simulator on a loopback port, AWS from a moto_server
// holding the stack, and the built functions under the emulator.
type Local struct {
	Sim        *sim.Server
	AcronisURL string
	Stack      *Stack
	rie        string
	bootstraps map[string]string
	closers    []func()
}

// LocalOptions say what StartLocal deploys.
type LocalOptions struct {
	Sim        *sim.Server
	Key        []byte            // the webhook signing key
	RIE        string            // the emulator; "": FindRIE's
	Bootstraps map[string]string // the built functions by name; see BuildFunctions
	MotoOutput io.Writer         // where moto_server's output goes; nil: nowhere
}

// StartLocal serves the simulator, starts moto_server and creates the stack in
// it (NewStack), the Acronis secret pointing at the simulator.
func StartLocal(ctx context.Context, o LocalOptions) (*Local, error) {
	l := &Local{Sim: o.Sim, rie: o.RIE, bootstraps: o.Bootstraps}
	var err error
	if l.rie == "" {
		if l.rie, err = FindRIE(); err != nil {
			return nil, err
		}
	}
	url, stop, err := ServeSim(o.Sim)
	if err != nil {
		return nil, err
	}
	l.AcronisURL, l.closers = url, []func(){stop}
	m, err := StartMoto(ctx, o.MotoOutput)
	if err == nil {
		l.closers = append(l.closers, m.Stop)
		l.Stack, err = NewStack(ctx, m, CredentialsJSON(url, o.Sim.ClientID(), o.Sim.ClientSecret()), o.Key)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Start runs function fn ("webhook", "worker" or "sweep") under the emulator
// until Close, with the stack's environment and extra (see Stack.Env), its
// invocations' deadline a minute away. Start is not safe for concurrent use.
func (l *Local) Start(ctx context.Context, fn string, extra map[string]string) (*Function, error) {
	f, err := Start(ctx, Options{RIE: l.rie, Bootstrap: l.bootstraps[fn], Env: l.Stack.Env(fn, extra), Timeout: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("start %s under the emulator: %w", fn, err)
	}
	l.closers = append(l.closers, f.Stop)
	return f, nil
}

// Close stops the functions, moto_server and the simulator.
func (l *Local) Close() {
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
}
