package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// decodeLines parses out as JSON lines, failing the test unless every line is
// one JSON object.
func decodeLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// decodeOne parses out as exactly one JSON line.
func decodeOne(t *testing.T, out []byte) map[string]any {
	t.Helper()
	lines := decodeLines(t, out)
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(lines), out)
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
		{
			name:      "request id from the Lambda context",
			ctx:       invocation("req-1"),
			log:       func(ctx context.Context, l *slog.Logger) { l.InfoContext(ctx, "hello", "tenant_id", "t-1") },
			requestID: "req-1",
			attrPath:  []string{"tenant_id"},
		},
		{
			name:     "no Lambda context, no request id",
			ctx:      context.Background(),
			log:      func(ctx context.Context, l *slog.Logger) { l.InfoContext(ctx, "hello", "tenant_id", "t-1") },
			attrPath: []string{"tenant_id"},
		},
		{
			name: "request id stays at the top inside a group",
			ctx:  invocation("req-2"),
			log: func(ctx context.Context, l *slog.Logger) {
				l.With("sweep_id", "s-1").WithGroup("tenant").InfoContext(ctx, "hello", "id", "t-1")
			},
			requestID: "req-2",
			attrPath:  []string{"tenant", "id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(tt.ctx, NewLogger(&buf, "sweep", "schedule", slog.LevelInfo))
			got := decodeOne(t, buf.Bytes())

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
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		t.Fatalf("no JSON line from lambdacontext:\n%s", out)
	}
	line, _, _ := bytes.Cut(out[i:], []byte("\n"))
	theirs := decodeOne(t, line)

	var buf bytes.Buffer
	NewLogger(&buf, "sweep", "schedule", slog.LevelInfo).InfoContext(invocation("req-1"), "hello")
	ours := decodeOne(t, buf.Bytes())

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

func TestLevels(t *testing.T) {
	all := []slog.Level{LevelTrace, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, LevelFatal}
	tests := []struct {
		env  string
		want []string
	}{
		{"", []string{"INFO", "WARN", "ERROR", "FATAL"}},
		{"TRACE", []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}},
		{"DEBUG", []string{"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}},
		{"INFO", []string{"INFO", "WARN", "ERROR", "FATAL"}},
		{"WARN", []string{"WARN", "ERROR", "FATAL"}},
		{"ERROR", []string{"ERROR", "FATAL"}},
		{"FATAL", []string{"FATAL"}},
		{" warn ", []string{"WARN", "ERROR", "FATAL"}},
		{"verbose", []string{"INFO", "WARN", "ERROR", "FATAL"}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "AWS_LAMBDA_LOG_LEVEL" {
					return tt.env
				}
				return ""
			}
			var buf bytes.Buffer
			l := NewLogger(&buf, "worker", "sqs", LevelFromEnv(getenv))
			for _, lv := range all {
				l.Log(context.Background(), lv, "m")
			}
			var got []string
			for _, line := range decodeLines(t, buf.Bytes()) {
				got = append(got, line["level"].(string))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("levels written = %v, want %v", got, tt.want)
			}
		})
	}
}

// Levels between Lambda's six are written as the name of their band, because
// Lambda filters JSON lines by level name and knows no "INFO+2".
func TestLevelNamesBetweenLambdaLevels(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{LevelTrace - 4, "TRACE"},
		{slog.LevelDebug - 1, "TRACE"},
		{slog.LevelInfo + 2, "INFO"},
		{slog.LevelWarn + 1, "WARN"},
		{slog.LevelError + 1, "ERROR"},
		{LevelFatal + 4, "FATAL"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		NewLogger(&buf, "f", "t", LevelTrace-4).Log(context.Background(), tt.level, "m")
		if got := decodeOne(t, buf.Bytes())["level"]; got != tt.want {
			t.Errorf("level %d written as %v, want %s", tt.level, got, tt.want)
		}
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
				var buf bytes.Buffer
				l := NewLogger(&buf, "webhook", "http", slog.LevelInfo)
				tt.log(slog.New(contextHandler{l.Handler(), ctx}))
				got := decodeOne(t, buf.Bytes())
				if v, ok := lookup(got, tt.path...); !ok || v != tt.want {
					t.Errorf("%v = %v, want %v; line: %s", tt.path, v, tt.want, buf.Bytes())
				}
				if tt.want == redacted && strings.Contains(buf.String(), secret) {
					t.Errorf("secret leaked: %s", buf.Bytes())
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
