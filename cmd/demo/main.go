// Command demo runs the whole job on this machine, with no AWS account and no
// Docker (`make demo`): it builds the three functions, runs each under the AWS
// Lambda Runtime Interface Emulator with Secrets Manager and SQS served by a
// local moto_server and Acronis by the bundled simulator, drives them through
// a dry-run sweep, a real sweep, signed webhook calls and a queue batch, and
// reports what each step sent, got back, changed and measured.
//
// The functions' own logs go to .demo/functions.log. The exit status is 0 only
// when every step did what the contract says.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"acronismfa/internal/acronis/sim"
	"acronismfa/internal/testkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if interrupted {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

// demo is the running world: simulator, moto, the three functions, the report.
type demo struct {
	out     io.Writer
	sim     *sim.Server
	moto    *testkit.Moto
	fns     map[string]*testkit.Function
	logPath string
	key     []byte // webhook signing key
	step    int
}

func run(ctx context.Context, out io.Writer) (err error) {
	start := time.Now()
	d := &demo{out: out, fns: map[string]*testkit.Function{}}
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	rie, err := testkit.FindRIE()
	if err != nil {
		return fmt.Errorf("%w (make demo installs it)", err)
	}
	dir := filepath.Join(root, ".demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d.logPath = filepath.Join(dir, "functions.log")
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logs := &prefixer{w: logFile}

	fmt.Fprintf(out, "Acronis MFA enforcer: local demo\n")
	fmt.Fprintf(out, "Three Lambda functions built from this tree, run under aws-lambda-rie (the real runtime API);\n")
	fmt.Fprintf(out, "Secrets Manager and SQS from a local moto_server; Acronis from the bundled simulator.\n\n")

	// The build is the slow part: start it first and set up the rest meanwhile.
	type built struct {
		paths map[string]string
		err   error
		took  time.Duration
	}
	buildCtx, cancelBuild := context.WithCancel(ctx)
	builds := make(chan built, 1)
	go func() {
		t0 := time.Now()
		paths, err := testkit.BuildFunctions(buildCtx, filepath.Join(dir, "bin"), "webhook", "worker", "sweep")
		builds <- built{paths, err, time.Since(t0)}
	}()
	var b built
	received := false
	defer func() {
		// Never leave the go command running behind an early return.
		cancelBuild()
		if !received {
			<-builds
		}
	}()

	d.moto, err = testkit.StartMoto(ctx, logs.named("moto"))
	if err != nil {
		return err
	}
	defer d.moto.Stop()

	acronisURL, stopSim, err := d.startSimulator()
	if err != nil {
		return err
	}
	defer stopSim()
	env, err := d.provision(ctx, acronisURL)
	if err != nil {
		return err
	}

	b, received = <-builds, true
	if b.err != nil {
		return fmt.Errorf("build the functions: %w", b.err)
	}
	fmt.Fprintf(out, "setup\n")
	fmt.Fprintf(out, "  built webhook, worker, sweep (CGO_ENABLED=0, -tags lambda.norpc) in %s\n", b.took.Round(100*time.Millisecond))
	fmt.Fprintf(out, "  moto_server     %s  (secrets acronis-mfa/acronis, acronis-mfa/webhook; queue acronis-mfa-enforce)\n", d.moto.Endpoint)
	fmt.Fprintf(out, "  Acronis sim     %s  (%d tenants under %q)\n", acronisURL, len(d.sim.All()), mustGet(d.sim, d.sim.RootID()).Name)

	var mu sync.Mutex
	var startErr error
	var wg sync.WaitGroup
	for _, name := range []string{"webhook", "worker", "sweep"} {
		wg.Go(func() {
			f, err := testkit.Start(ctx, testkit.Options{
				RIE: rie, Bootstrap: b.paths[name], Env: env[name], Timeout: 60 * time.Second, Output: logs.named(name),
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				startErr = errors.Join(startErr, fmt.Errorf("start %s under the emulator: %w", name, err))
				return
			}
			d.fns[name] = f
		})
	}
	wg.Wait()
	defer func() {
		for _, f := range d.fns {
			f.Stop()
		}
	}()
	if startErr != nil {
		return startErr
	}
	for _, name := range []string{"webhook", "worker", "sweep"} {
		fmt.Fprintf(out, "  %-15s %s  (aws-lambda-rie, %s)\n", name, d.fns[name].URL, filepath.Join(".demo", "bin", name))
	}
	fmt.Fprintf(out, "  function logs   %s\n", d.logPath)

	for _, step := range []func(context.Context) error{
		d.dryRunSweep, d.realSweep, d.newTenants, d.webhookGet, d.webhookPut, d.webhookUnsigned, d.workerBatch, d.finalCheck,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nAll steps did what the contract says, in %s. Function logs: %s\n", time.Since(start).Round(100*time.Millisecond), d.logPath)
	return nil
}

// startSimulator generates the tenant tree and serves it on a loopback port.
func (d *demo) startSimulator() (url string, stop func(), err error) {
	d.sim = sim.New(sim.Options{ClientSecret: rand.Text()})
	d.sim.Generate(sim.TreeSpec{Seed: 2026, Size: 300, Drift: 0.15})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: d.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// prefixer writes whole lines, each prefixed with its source's name, to one
// file shared by every child process.
type prefixer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *prefixer) named(name string) io.Writer {
	return &prefixedWriter{p: p, prefix: fmt.Sprintf("%-7s | ", name)}
}

type prefixedWriter struct {
	p       *prefixer
	prefix  string
	partial []byte
}

func (w *prefixedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	data := append(w.partial, b...)
	for {
		i := indexNewline(data)
		if i < 0 {
			break
		}
		if _, err := io.WriteString(w.p.w, w.prefix+string(data[:i+1])); err != nil {
			return 0, err
		}
		data = data[i+1:]
	}
	w.partial = append([]byte(nil), data...)
	return len(b), nil
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
