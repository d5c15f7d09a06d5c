package testkit

// This file builds the functions of this module and runs them under the AWS
// Lambda Runtime Interface Emulator (aws-lambda-rie), the way Lambda's
// provided.al2023 runtime runs them: the real runtime API, one invocation at a
// time, the environment given and nothing else. The end-to-end tests and
// `make demo` both use it, so its API takes no testing.T.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RIEPackage is the pinned emulator, as the Makefile installs it.
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// InvokePath is where the emulator takes invocations.
const InvokePath = "/2015-03-31/functions/function/invocations"

// ModuleRoot returns the directory of the go.mod that encloses the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testkit: no go.mod in the working directory or above it")
		}
		dir = parent
	}
}

// packagePath turns a function name ("webhook") into its package path
// ("./functions/webhook"); a path that starts with "./" is kept.
func packagePath(pkg string) string {
	if strings.HasPrefix(pkg, "./") {
		return pkg
	}
	return "./functions/" + pkg
}

// Build compiles one function, named as in functions/NAME ("webhook") or by its
// package path ("./functions/webhook"), to outPath, as docs/reference.md, Functions, builds it:
// CGO_ENABLED=0, -tags lambda.norpc, but for this machine's GOOS and GOARCH,
// since the emulator runs it here.
func Build(ctx context.Context, pkg, outPath string) error {
	abs, err := filepath.Abs(outPath)
	if err != nil {
		return err
	}
	return goBuild(ctx, abs, packagePath(pkg))
}

// BuildFunctions compiles the named functions ("webhook", "worker", "sweep")
// into dir with one go command, which shares the work between them, and returns
// each bootstrap's path by name.
func BuildFunctions(ctx context.Context, dir string, names ...string) (map[string]string, error) {
	if len(names) == 0 {
		return nil, errors.New("testkit: no function to build")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(names))
	pkgs := make([]string, 0, len(names))
	for _, name := range names {
		pkg := packagePath(name)
		pkgs = append(pkgs, pkg)
		// With several packages, -o DIR/ names each binary after its directory.
		paths[name] = filepath.Join(abs, filepath.Base(pkg))
	}
	if len(pkgs) == 1 {
		return paths, goBuild(ctx, paths[names[0]], pkgs[0])
	}
	return paths, goBuild(ctx, abs+string(filepath.Separator), pkgs...)
}

func goBuild(ctx context.Context, out string, pkgs ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("testkit: the go command is not on PATH: %w", err)
	}
	args := append([]string{"build", "-tags", "lambda.norpc", "-o", out}, pkgs...)
	cmd := exec.CommandContext(ctx, gobin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	// Interrupted, the go command stops its compilers and cleans up itself.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output.Bytes())
	}
	return nil
}

// FindRIE locates aws-lambda-rie: $AWS_LAMBDA_RIE, else where `go install` puts
// it ($GOBIN, or the first $GOPATH's bin), else PATH.
func FindRIE() (string, error) {
	if p := os.Getenv("AWS_LAMBDA_RIE"); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("AWS_LAMBDA_RIE=%s: %w; install it with: go install %s", p, err, RIEPackage)
		}
		return p, nil
	}
	if gobin, err := exec.LookPath("go"); err == nil {
		out, err := exec.Command(gobin, "env", "GOBIN", "GOPATH").Output()
		if err == nil {
			// One line per variable; GOBIN's is usually empty, so trim only the end.
			lines := strings.Split(strings.TrimRight(string(out), "\r\n"), "\n")
			var dirs []string
			if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
				dirs = append(dirs, strings.TrimSpace(lines[0]))
			}
			if len(lines) > 1 {
				if first, _, _ := strings.Cut(strings.TrimSpace(lines[1]), string(os.PathListSeparator)); first != "" {
					dirs = append(dirs, filepath.Join(first, "bin"))
				}
			}
			for _, dir := range dirs {
				p := filepath.Join(dir, "aws-lambda-rie")
				if executable(p) == nil {
					return p, nil
				}
			}
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("aws-lambda-rie not found (not in $AWS_LAMBDA_RIE, $(go env GOPATH)/bin or PATH); install it with: go install %s (or run make tools)", RIEPackage)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Options say how to run a function under the emulator.
type Options struct {
	RIE       string            // path to aws-lambda-rie; see FindRIE
	Bootstrap string            // the built function
	Env       map[string]string // the function's environment, beyond PATH and HOME
	// Timeout is the invocation deadline (AWS_LAMBDA_FUNCTION_TIMEOUT, whole
	// seconds, rounded up); 0 keeps the emulator's default of 300 s.
	Timeout time.Duration
	// Output receives the emulator's and the function's stdout and stderr, besides
	// the Function's own Output. Nil: only that.
	Output io.Writer
}

// Function is a bootstrap running under the emulator.
type Function struct {
	URL string // base URL of the emulator's invoke endpoint

	proc   *process
	out    *Output
	client *http.Client
	mu     sync.Mutex // one invocation at a time: a second one crashes the emulator
}

// startAttempts bounds the retries when a free port was taken before the
// emulator bound it.
const startAttempts = 3

// Start runs o.Bootstrap under the emulator on two free loopback ports and
// returns once the emulator accepts connections. The function itself starts on
// the first invocation, as in Lambda. The environment is PATH, HOME and o.Env
// only: nothing of the caller's, AWS credentials least of all, leaks into it.
func Start(ctx context.Context, o Options) (*Function, error) {
	if o.RIE == "" || o.Bootstrap == "" {
		return nil, errors.New("testkit: Options.RIE and Options.Bootstrap are required")
	}
	bootstrap, err := filepath.Abs(o.Bootstrap)
	if err != nil {
		return nil, err
	}
	if err := executable(bootstrap); err != nil {
		return nil, fmt.Errorf("testkit: bootstrap %s: %w", bootstrap, err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range o.Env {
		env = append(env, k+"="+v)
	}
	if o.Timeout > 0 {
		secs := int64((o.Timeout + time.Second - 1) / time.Second)
		env = append(env, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.FormatInt(secs, 10))
	}
	out := NewOutput(o.Output)
	var lastErr error
	for range startAttempts {
		ports, err := FreePorts(2)
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		cmd := exec.Command(o.RIE,
			"--runtime-interface-emulator-address", addr,
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
			bootstrap)
		cmd.Env = env
		cmd.Dir = filepath.Dir(bootstrap)
		p, err := startProcess(cmd, out)
		if err != nil {
			return nil, fmt.Errorf("testkit: start %s: %w", o.RIE, err)
		}
		if err := p.waitDial(ctx, addr, 10*time.Second); err != nil {
			p.stop()
			lastErr = err
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		return &Function{
			URL:    "http://" + addr,
			proc:   p,
			out:    out,
			client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		}, nil
	}
	return nil, fmt.Errorf("testkit: the emulator did not start: %w", lastErr)
}

// Output is everything the emulator and the function have written so far.
func (f *Function) Output() *Output { return f.out }

// Invoke sends one event and returns the emulator's answer: 200 with the
// handler's result (or with {"errorMessage", "errorType"} for a returned
// error), 502 when the function crashed or failed at init. Invocations are
// serialised. err is set only when no answer came, or no END line after one.
func (f *Function) Invoke(ctx context.Context, event []byte) (status int, body []byte, err error) {
	status, body, _, err = f.invoke(ctx, event)
	return status, body, err
}

// invoke is Invoke that also returns what was written during the invocation.
// The emulator prints its END line after everything the function wrote and
// before it answers; so, once the answer is in, the lines up to that END line
// are the invocation's whole output, and none of it is left to show up in the
// next one's.
func (f *Function) invoke(ctx context.Context, event []byte) (status int, body []byte, lines []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mark := f.out.Mark()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+InvokePath, bytes.NewReader(event))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("testkit: invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, body, nil, fmt.Errorf("testkit: read the invocation result: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// A crash or failed init has no END line.
		return resp.StatusCode, body, f.out.Since(mark), nil
	}
	end, err := f.out.Wait(ctx, mark, 10*time.Second, isEnd)
	if err != nil {
		return resp.StatusCode, body, nil, fmt.Errorf("testkit: the emulator's END line after answer %s: %w", body, err)
	}
	lines = f.out.Since(mark)
	return resp.StatusCode, body, lines[:slices.Index(lines, end)+1], nil
}

// isEnd tells the emulator's line that closes an invocation.
func isEnd(line string) bool { return strings.HasPrefix(line, "END RequestId: ") }

// Stop ends the emulator and the function (the whole process group) and waits
// until their output is read. It is safe to call more than once.
func (f *Function) Stop() { f.proc.stop() }

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testkit: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
