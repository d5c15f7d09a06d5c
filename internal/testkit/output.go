package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output is a function's stdout as tests see it: an io.Writer safe for the
// concurrent writes of a handler, kept as lines, that reads back as log lines,
// audit lines and EMF documents. A copy of everything goes on to a tee writer,
// if any.
type Output struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	tee     io.Writer
}

// NewOutput returns an empty Output that also writes everything to tee (nil: none).
func NewOutput(tee io.Writer) *Output { return &Output{tee: tee} }

// Write keeps p's complete lines and holds a trailing partial line until its end
// arrives. It never fails: a failing tee is dropped, not allowed to stop a child.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tee != nil {
		if _, err := o.tee.Write(p); err != nil {
			o.tee = nil
		}
	}
	data := append(o.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		o.lines = append(o.lines, strings.TrimSuffix(string(data[:i]), "\r"))
		data = data[i+1:]
	}
	o.partial = append([]byte(nil), data...)
	return len(p), nil
}

// String is everything written so far, the held partial line included.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n") + "\n" + string(o.partial)
}

// Mark is the number of complete lines so far: pass it to Since or Wait to see
// only what came after, such as one invocation's output.
func (o *Output) Mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines)
}

// Lines returns every complete line so far.
func (o *Output) Lines() []string { return o.Since(0) }

// Since returns the complete lines written after mark.
func (o *Output) Since(mark int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if mark >= len(o.lines) {
		return nil
	}
	return append([]string(nil), o.lines[max(mark, 0):]...)
}

// Wait polls until a line after mark satisfies match and returns it: output
// from another process reaches the Output through a pipe, some time after it
// was written.
func (o *Output) Wait(ctx context.Context, mark int, timeout time.Duration, match func(string) bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for _, line := range o.Since(mark) {
			if match(line) {
				return line, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("testkit: no matching output line within %s", timeout)
		case <-t.C:
		}
	}
}

// JSON decodes every line after mark that is a JSON object; other lines (the
// emulator's own) are left out.
func (o *Output) JSON(mark int) []map[string]any {
	var out []map[string]any
	for _, line := range o.Since(mark) {
		if m, ok := JSONObject(line); ok {
			out = append(out, m)
		}
	}
	return out
}

// Audits returns the audit lines ("audit": true) after mark, decoded.
func (o *Output) Audits(mark int) []map[string]any { return AuditLines(o.Since(mark)) }

// EMF returns the Embedded Metric Format documents after mark, decoded; a
// document that does not parse is an error, since CloudWatch would drop it.
func (o *Output) EMF(mark int) ([]EMF, error) {
	var out []EMF
	for _, line := range o.Since(mark) {
		if !IsEMF(line) {
			continue
		}
		e, err := ParseEMF(line)
		if err != nil {
			return nil, fmt.Errorf("EMF document %s: %w", line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// InvocationEMF checks what every invocation writes after mark: exactly one
// EMF document, in namespace, with the Function and Trigger dimensions of the
// function that wrote it. It returns that document.
func (o *Output) InvocationEMF(t testing.TB, mark int, namespace, function, trigger string) EMF {
	t.Helper()
	docs, err := o.EMF(mark)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d EMF documents (%v), want one per invocation", len(docs), err)
	}
	e := docs[0]
	if e.Namespace != namespace || e.Dimension("Function") != function || e.Dimension("Trigger") != trigger {
		t.Fatalf("EMF namespace %s, Function %s, Trigger %s; want %s, %s, %s",
			e.Namespace, e.Dimension("Function"), e.Dimension("Trigger"), namespace, function, trigger)
	}
	return e
}

// pollInterval is how often readiness and output are polled.
const pollInterval = 10 * time.Millisecond

// JSONObject decodes line as one JSON object; ok is false for anything else,
// such as the emulator's own text lines.
func JSONObject(line string) (map[string]any, bool) {
	if !strings.HasPrefix(strings.TrimSpace(line), "{") {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil, false
	}
	return m, true
}

// AuditLines returns the audit lines ("audit": true) among lines, decoded.
func AuditLines(lines []string) []map[string]any {
	var out []map[string]any
	for _, line := range lines {
		if m, ok := JSONObject(line); ok && m["audit"] == true {
			out = append(out, m)
		}
	}
	return out
}
