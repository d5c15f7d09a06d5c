package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"acronismfa/internal/app"
	"acronismfa/internal/config"
)

// Exit statuses.
const (
	ExitOK     = 0 // done
	ExitFailed = 1 // the work failed in part or whole
	ExitUsage  = 2 // bad usage or configuration
)

// Env is the command line's world: its arguments' outside.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Terminal says whether Stderr is a terminal: a sweep's progress is then
	// one live line, and plain periodic lines otherwise.
	Terminal bool
}

// errUsage is wrapped by every mistake of the caller's: exit status 2.
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// errFailed is wrapped by work that failed: exit status 1.
var errFailed = errors.New("failed")

type command struct {
	name    string
	args    string // after the name, in the usage line
	summary string
	details string // help text after the usage line: flags and examples
	run     func(ctx context.Context, s *session, fs *flag.FlagSet, args []string) error
	flags   func(fs *flag.FlagSet)
}

var commands []command

func init() {
	commands = []command{statusCommand, setCommand, usersCommand, sweepCommand, simCommand}
}

// Main runs the command line with args (the program's name left out) and
// returns its exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" && len(args) == 1 || args[0] == "-h" || args[0] == "--help" {
		help(env.Stdout)
		return ExitOK
	}
	name := args[0]
	if name == "help" {
		name, args = args[1], []string{args[1], "--help"}
	}
	for _, c := range commands {
		if c.name == name {
			return finish(env, c.exec(ctx, env, args[1:]))
		}
	}
	fmt.Fprintf(env.Stderr, "acronis-mfa: unknown command %q\n\n", name)
	help(env.Stderr)
	return ExitUsage
}

// finish turns a command's error into its message on stderr and exit status.
func finish(env Env, err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "acronis-mfa: %s\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "acronis-mfa: %s\n", strings.TrimPrefix(err.Error(), errFailed.Error()+": "))
		return ExitFailed
	}
}

// session is one command's run: its flags and, once loaded, the functions' own
// dependencies.
type session struct {
	env  Env
	json bool
	deps *app.Deps
}

// exec parses the command's flags, which may come before, between or after
// its arguments, and runs it.
func (c command) exec(ctx context.Context, env Env, args []string) error {
	s := &session{env: env}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&s.json, "json", false, "")
	if c.flags != nil {
		c.flags(fs)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(env.Stdout)
				return err
			}
			return usagef("%s: %v (see acronis-mfa %s --help)", c.name, err, c.name)
		}
		if args = fs.Args(); len(args) == 0 {
			break
		}
		positional, args = append(positional, args[0]), args[1:]
	}
	return c.run(ctx, s, fs, positional)
}

// load builds the functions' dependencies from the environment, as a Lambda
// cold start does; a bad variable is a usage error that names it.
func (s *session) load(ctx context.Context) error {
	d, err := app.Init(ctx, config.CLI, s.env.Getenv, io.Discard)
	if err != nil {
		return usagef("%v", err)
	}
	s.deps = d
	return nil
}

// emit writes v as indented JSON on stdout.
func (s *session) emit(v any) error {
	enc := json.NewEncoder(s.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c command) help(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  acronis-mfa %s %s\n\n%s", c.summary, c.name, c.args, c.details)
	fmt.Fprintln(w, "\n  --json  print machine output (JSON) on stdout")
}

func help(w io.Writer) {
	fmt.Fprint(w, `acronis-mfa: the Acronis MFA enforcer from the command line, on the same
configuration, client and policy as the deployed functions.

Usage:
  acronis-mfa COMMAND [ARGUMENTS] [FLAGS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Credentials come from ACRONIS_SECRET_ID (a Secrets Manager secret, with the AWS
SDK's usual configuration), or from ACRONIS_BASE_URL, ACRONIS_CLIENT_ID and
ACRONIS_CLIENT_SECRET; never from a flag. MFA_DESIRED_STATE, MFA_ALLOW_DISABLE,
EXCLUDED_TENANT_IDS, ROOT_TENANT_ID and SWEEP_CONCURRENCY apply as they do to
the functions. Try it on the bundled simulator: acronis-mfa sim

Exit status: 0 done; 1 the work failed in part or whole; 2 bad usage or
configuration. Every command takes --json and --help.
`)
}
