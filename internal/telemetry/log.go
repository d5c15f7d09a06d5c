package telemetry

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Lambda knows six log levels; slog has no names for TRACE and FATAL, so they sit
// one step (4) beyond DEBUG and ERROR, the spacing slog uses between its own levels.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
)

// LevelFromEnv reads AWS_LAMBDA_LOG_LEVEL as Lambda's advanced logging controls set
// it. An unset or unknown value means INFO, Lambda's own default.
func LevelFromEnv(getenv func(string) string) slog.Level {
	switch strings.ToUpper(strings.TrimSpace(getenv("AWS_LAMBDA_LOG_LEVEL"))) {
	case "TRACE":
		return LevelTrace
	case "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	case "FATAL":
		return LevelFatal
	default:
		return slog.LevelInfo
	}
}

// NewLogger returns a logger that writes one JSON object per line to w, keyed as
// lambdacontext.NewLogHandler keys them under AWS_LAMBDA_LOG_FORMAT=JSON
// (timestamp, level, message, and requestId from the lambdacontext in the record's
// context), with function and trigger on every line. That handler cannot be given
// a writer and picks its format from the environment, so this one reproduces its
// keys with lambdacontext.ReplaceAttr and is JSON always. Attributes whose key looks
// like a credential are written as REDACTED.
func NewLogger(w io.Writer, function, trigger string, level slog.Leveler) *slog.Logger {
	base := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}).
		WithAttrs([]slog.Attr{slog.String("function", function), slog.String("trigger", trigger)})
	return slog.New(&handler{base: base, inner: base})
}

// handler adds requestId at the top level of every line. lambdacontext adds it as
// a record attribute, which lands inside any group the logger has opened; Logs
// Insights queries expect it at the top, so the caller's WithAttrs and WithGroup
// calls are kept and replayed over a base that already carries requestId.
type handler struct {
	base  slog.Handler // the JSON handler with function and trigger, before the caller's calls
	inner slog.Handler // base with ops applied, for records without a Lambda context
	ops   []func(slog.Handler) slog.Handler
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return h.inner.Handle(ctx, r)
	}
	inner := h.base.WithAttrs([]slog.Attr{slog.String("requestId", lc.AwsRequestID)})
	for _, op := range h.ops {
		inner = op(inner)
	}
	return inner.Handle(ctx, r)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.with(func(next slog.Handler) slog.Handler { return next.WithAttrs(attrs) })
}

func (h *handler) WithGroup(name string) slog.Handler {
	return h.with(func(next slog.Handler) slog.Handler { return next.WithGroup(name) })
}

func (h *handler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	return &handler{base: h.base, inner: op(h.inner), ops: append(slices.Clip(h.ops), op)}
}

// redacted stands in for the value of any attribute that looks like a credential.
const redacted = "REDACTED"

// secretKeys are attribute keys whose values are never logged: the Acronis client
// secret, tokens, HTTP authorization headers and the webhook signing keys. This is
// a safety net behind the types that redact themselves, not a replacement for them.
var secretKeys = []string{
	"client_secret", "secret", "access_token", "token", "id_token",
	"authorization", "signing_key", "signing_keys", "password",
}

// isSecretKey compares case-insensitively and treats - as _, so header-style
// spellings such as Client-Secret are caught too.
func isSecretKey(key string) bool {
	return slices.Contains(secretKeys, strings.ReplaceAll(strings.ToLower(key), "-", "_"))
}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	// slog never passes a group itself here, only its members, so a group named
	// like a secret is redacted member by member.
	if isSecretKey(a.Key) || slices.ContainsFunc(groups, isSecretKey) {
		return slog.String(a.Key, redacted)
	}
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(levelName(l))
		}
	}
	return lambdacontext.ReplaceAttr(groups, a)
}

// levelName names a level as Lambda does. Lambda filters JSON lines by their level
// and knows only its six names, so levels between them (slog's "INFO+2") are
// written as the name of the band they fall in.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	case l < LevelFatal:
		return "ERROR"
	default:
		return "FATAL"
	}
}
