package testkit

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"acronismfa/internal/acronis"
)

// SimProcess is `acronis-mfa sim` in a child process: the simulator outside
// the measuring process, so that a benchmark's memory figures are the sweep's
// own, with no tree of the simulator's in them.
type SimProcess struct {
	Creds acronis.Credentials
	proc  *process
}

// StartSimProcess runs the command line binary bin (built with Build from
// ./cmd/acronis-mfa) as `sim --tenants N --latency D` and returns once it
// serves. Stop ends it.
func StartSimProcess(ctx context.Context, bin string, tenants int, latency time.Duration) (*SimProcess, error) {
	out := NewOutput(nil)
	cmd := exec.Command(bin, "sim", "--tenants", strconv.Itoa(tenants), "--latency", latency.String())
	p, err := startProcess(cmd, out)
	if err != nil {
		return nil, err
	}
	// The three exports come before the line on stderr that says it serves.
	err = p.waitReady(ctx, 2*time.Minute, "acronis-mfa sim", func() error {
		if !strings.Contains(out.String(), "Ctrl-C stops") {
			return fmt.Errorf("no line that it serves yet: %q", out.String())
		}
		return nil
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	vars := map[string]string{}
	for _, line := range out.Lines() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			vars[k] = v
		}
	}
	s := &SimProcess{proc: p, Creds: acronis.Credentials{BaseURL: vars["ACRONIS_BASE_URL"],
		ClientID: vars["ACRONIS_CLIENT_ID"], ClientSecret: vars["ACRONIS_CLIENT_SECRET"]}}
	if s.Creds.BaseURL == "" || s.Creds.ClientID == "" || s.Creds.ClientSecret == "" {
		s.Stop()
		return nil, fmt.Errorf("acronis-mfa sim printed no credentials: %q", out.String())
	}
	return s, nil
}

// Stop ends the simulator's process.
func (s *SimProcess) Stop() { s.proc.stop() }
