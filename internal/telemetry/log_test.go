package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"acronismfa/internal/testkit"
)

// logLines returns what log wrote through the sweep's logger at level; every
// line must be one JSON object.
func logLines(t *testing.T, level slog.Leveler, log func(*slog.Logger)) []map[string]any {
	t.Helper()
	out := testkit.NewOutput(nil)
	log(NewLogger(out, "sweep", "schedule", level))
	var lines []map[string]any
	for _, l := range out.Lines() {
		m, ok := testkit.JSONObject(l)
		if !ok {
			t.Fatalf("line %q is not a JSON object", l)
		}
		lines = append(lines, m)
	}
	return lines
}

// logLine is logLines at INFO that must write exactly one line.
func logLine(t *testing.T, log func(*slog.Logger)) map[string]any {
	t.Helper()
	lines := logLines(t, slog.LevelInfo, log)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %v", len(lines), lines)
	}
	return lines[0]
}

// lookup follows path through nested JSON objects.
func lookup(m map[string]any, path ...string) (any, bool) {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func invocation(requestID string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: requestID})
}

func TestLoggerKeys(t *testing.T) {
	tests := []struct {
		name      string
		ctx       context.Context
		log       func(context.Context, *slog.Logger)
		requestID string // "" when the line must have none
		attrPath  []string
	}{
		{"request id from the Lambda context", invocation("req-1"),
			func(ctx context.Context, l *slog.Logger) { l.InfoContext(ctx, "hello", "tenant_id", "t-1") }, "req-1", []string{"tenant_id"}},
		{"no Lambda context, no request id", context.Background(),
			func(ctx context.Context, l *slog.Logger) { l.InfoContext(ctx, "hello", "tenant_id", "t-1") }, "", []string{"tenant_id"}},
		{"request id stays at the top inside a group", invocation("req-2"), func(ctx context.Context, l *slog.Logger) {
			l.With("sweep_id", "s-1").WithGroup("tenant").InfoContext(ctx, "hello", "id", "t-1")
		}, "req-2", []string{"tenant", "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logLine(t, func(l *slog.Logger) { tt.log(tt.ctx, l) })
			ts, _ := got["timestamp"].(string)
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("timestamp %q: %v", ts, err)
			}
			want := map[string]any{"level": "INFO", "message": "hello", "function": "sweep", "trigger": "schedule"}
			if tt.requestID != "" {
				want["requestId"] = tt.requestID
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if v, ok := got["requestId"]; ok && tt.requestID == "" {
				t.Errorf("requestId = %v without a Lambda context", v)
			}
			if v, _ := lookup(got, tt.attrPath...); v != "t-1" {
				t.Errorf("%v = %v, want t-1", tt.attrPath, v)
			}
			for _, k := range []string{"time", "msg"} {
				if _, ok := got[k]; ok {
					t.Errorf("slog key %q written; Lambda names it differently", k)
				}
			}
		})
	}
}

// TestKeysMatchLambdacontext runs lambdacontext's own handler with
// AWS_LAMBDA_LOG_FORMAT=JSON in a child process (it reads the variable once at
// start) and checks that NewLogger writes the same keys, plus function and trigger.
func TestKeysMatchLambdacontext(t *testing.T) {
	if os.Getenv("TELEMETRY_LAMBDACONTEXT_CHILD") == "1" {
		lambdacontext.NewLogger().InfoContext(invocation("req-1"), "hello")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeysMatchLambdacontext$")
	cmd.Env = append(os.Environ(), "TELEMETRY_LAMBDACONTEXT_CHILD=1", "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL=INFO")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The child's stdout also carries the test runner's PASS line.
	line, _, _ := bytes.Cut(out[max(bytes.IndexByte(out, '{'), 0):], []byte("\n"))
	theirs, ok := testkit.JSONObject(string(line))
	if !ok {
		t.Fatalf("no JSON line from lambdacontext:\n%s", out)
	}
	ours := logLine(t, func(l *slog.Logger) { l.InfoContext(invocation("req-1"), "hello") })
	if ours["function"] != "sweep" || ours["trigger"] != "schedule" {
		t.Errorf("function, trigger = %v, %v", ours["function"], ours["trigger"])
	}
	delete(ours, "function")
	delete(ours, "trigger")
	if got, want := slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(theirs)); !slices.Equal(got, want) {
		t.Fatalf("keys = %v, lambdacontext writes %v", got, want)
	}
	for k, v := range theirs {
		if k != "timestamp" && ours[k] != v {
			t.Errorf("%s = %v, lambdacontext writes %v", k, ours[k], v)
		}
	}
}

// AWS_LAMBDA_LOG_LEVEL filters as Lambda does, and levels between Lambda's six
// are written as the name of their band, because Lambda filters JSON lines by
// level name and knows no "INFO+2".
func TestLevels(t *testing.T) {
	all := []slog.Level{LevelTrace - 4, LevelTrace, slog.LevelDebug - 1, slog.LevelDebug, slog.LevelInfo, slog.LevelInfo + 2,
		slog.LevelWarn, slog.LevelWarn + 1, slog.LevelError, slog.LevelError + 1, LevelFatal, LevelFatal + 4}
	tests := []struct {
		env  string
		want []string
	}{
		{"", []string{"INFO", "INFO", "WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"TRACE", []string{"TRACE", "TRACE", "DEBUG", "INFO", "INFO", "WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"DEBUG", []string{"DEBUG", "INFO", "INFO", "WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"INFO", []string{"INFO", "INFO", "WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"WARN", []string{"WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"ERROR", []string{"ERROR", "ERROR", "FATAL", "FATAL"}},
		{"FATAL", []string{"FATAL", "FATAL"}},
		{" warn ", []string{"WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
		{"verbose", []string{"INFO", "INFO", "WARN", "WARN", "ERROR", "ERROR", "FATAL", "FATAL"}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			getenv := func(k string) string { return map[string]string{"AWS_LAMBDA_LOG_LEVEL": tt.env}[k] }
			var got []string
			for _, line := range logLines(t, LevelFromEnv(getenv), func(l *slog.Logger) {
				for _, lv := range all {
					l.Log(context.Background(), lv, "m")
				}
			}) {
				got = append(got, line["level"].(string))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("levels written = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		name string
		log  func(*slog.Logger)
		path []string
		want any
	}{
		{"client_secret", func(l *slog.Logger) { l.Info("m", "client_secret", secret) }, []string{"client_secret"}, redacted},
		{"secret", func(l *slog.Logger) { l.Info("m", "secret", secret) }, []string{"secret"}, redacted},
		{"access_token", func(l *slog.Logger) { l.Info("m", "access_token", secret) }, []string{"access_token"}, redacted},
		{"token", func(l *slog.Logger) { l.Info("m", "token", secret) }, []string{"token"}, redacted},
		{"id_token", func(l *slog.Logger) { l.Info("m", "id_token", secret) }, []string{"id_token"}, redacted},
		{"Authorization header", func(l *slog.Logger) { l.Info("m", "Authorization", "Bearer "+secret) }, []string{"Authorization"}, redacted},
		{"signing_key", func(l *slog.Logger) { l.Info("m", "signing_key", secret) }, []string{"signing_key"}, redacted},
		{"signing_keys list", func(l *slog.Logger) { l.Info("m", "signing_keys", []string{secret, secret}) }, []string{"signing_keys"}, redacted},
		{"password", func(l *slog.Logger) { l.Info("m", "PASSWORD", secret) }, []string{"PASSWORD"}, redacted},
		{"header spelling", func(l *slog.Logger) { l.Info("m", "Client-Secret", secret) }, []string{"Client-Secret"}, redacted},
		{"inside an attribute group", func(l *slog.Logger) { l.Info("m", slog.Group("acronis", "client_id", "c-1", "client_secret", secret)) }, []string{"acronis", "client_secret"}, redacted},
		{"inside a logger group", func(l *slog.Logger) { l.WithGroup("http").WithGroup("header").Info("m", "authorization", secret) }, []string{"http", "header", "authorization"}, redacted},
		{"a group named like a secret", func(l *slog.Logger) { l.Info("m", slog.Group("token", "value", secret)) }, []string{"token", "value"}, redacted},
		{"through With", func(l *slog.Logger) { l.With("access_token", secret).Info("m") }, []string{"access_token"}, redacted},
		{"through With inside a group", func(l *slog.Logger) { l.WithGroup("g").With("token", secret).Info("m") }, []string{"g", "token"}, redacted},
		{"other keys untouched", func(l *slog.Logger) { l.Info("m", "token_count", secret) }, []string{"token_count"}, secret},
		{"non-secret members of a group untouched", func(l *slog.Logger) { l.Info("m", slog.Group("acronis", "client_id", secret)) }, []string{"acronis", "client_id"}, secret},
	}
	// With a Lambda context the handler rebuilds its chain for every record, so
	// both paths are checked.
	contexts := map[string]context.Context{"invocation": invocation("req-1"), "no invocation": context.Background()}
	for _, tt := range tests {
		for ctxName, ctx := range contexts {
			t.Run(tt.name+"/"+ctxName, func(t *testing.T) {
				got := logLine(t, func(l *slog.Logger) { tt.log(slog.New(contextHandler{l.Handler(), ctx})) })
				if v, ok := lookup(got, tt.path...); !ok || v != tt.want {
					t.Errorf("%v = %v, want %v; line: %v", tt.path, v, tt.want, got)
				}
				if tt.want == redacted && bytes.Contains(fmt.Append(nil, got), []byte(secret)) {
					t.Errorf("secret leaked: %v", got)
				}
			})
		}
	}
}

// contextHandler hands every record a fixed context, so that tests can log
// through slog's context-free methods as if inside an invocation.
type contextHandler struct {
	slog.Handler
	ctx context.Context
}

func (h contextHandler) Handle(_ context.Context, r slog.Record) error {
	return h.Handler.Handle(h.ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs), h.ctx}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name), h.ctx}
}
