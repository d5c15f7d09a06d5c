package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Lines is an io.Writer that keeps what is written to it as lines, for finding a
// function's log lines and EMF documents; a copy goes on to a tee writer, if
// any. It is safe for concurrent use.
type Lines struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	tee     io.Writer
}

// NewLines returns an empty Lines that also writes everything to tee (nil: none).
func NewLines(tee io.Writer) *Lines { return &Lines{tee: tee} }

// Write keeps p's complete lines and holds a trailing partial line until its end
// arrives. It never fails: a failing tee is dropped, not allowed to stop a child.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tee != nil {
		if _, err := l.tee.Write(p); err != nil {
			l.tee = nil
		}
	}
	data := append(l.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, strings.TrimSuffix(string(data[:i]), "\r"))
		data = data[i+1:]
	}
	l.partial = append([]byte(nil), data...)
	return len(p), nil
}

// Lines returns every complete line so far.
func (l *Lines) Lines() []string { return l.Since(0) }

// Mark is the number of complete lines so far: pass it to Since or Wait to see
// only what came after, such as one invocation's output.
func (l *Lines) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// Since returns the complete lines written after mark.
func (l *Lines) Since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if mark >= len(l.lines) {
		return nil
	}
	return append([]string(nil), l.lines[max(mark, 0):]...)
}

// Wait polls until a line after mark satisfies match and returns it. The answer
// of an invocation can overtake the function's output on its way through the
// emulator, so a caller that needs the invocation's EMF document waits for it.
func (l *Lines) Wait(ctx context.Context, mark int, timeout time.Duration, match func(string) bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for _, line := range l.Since(mark) {
			if match(line) {
				return line, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("lambdarun: no matching output line within %s", timeout)
		case <-t.C:
		}
	}
}

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

// IsEMF reports whether line is an Embedded Metric Format document.
func IsEMF(line string) bool {
	m, ok := JSONObject(line)
	if !ok {
		return false
	}
	_, ok = m["_aws"]
	return ok
}

// EMF is one Embedded Metric Format document, as CloudWatch reads it.
type EMF struct {
	Namespace  string
	Dimensions [][]string         // the dimension sets declared
	Values     map[string]any     // every member but _aws: dimension values and metric values
	Metrics    map[string]float64 // the declared metrics' values, by name
	Units      map[string]string  // the declared metrics' units, by name
	Order      []string           // the declared metrics' names, in declaration order
}

// Dimension returns the value of the dimension name ("" if absent or not a string).
func (e EMF) Dimension(name string) string {
	s, _ := e.Values[name].(string)
	return s
}

// ParseEMF decodes an EMF document with exactly one CloudWatchMetrics directive.
func ParseEMF(line string) (EMF, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &doc); err != nil {
		return EMF{}, fmt.Errorf("not a JSON object: %w", err)
	}
	var meta struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	raw, ok := doc["_aws"]
	if !ok {
		return EMF{}, fmt.Errorf("no _aws member")
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return EMF{}, fmt.Errorf("_aws: %w", err)
	}
	if meta.Timestamp == nil {
		return EMF{}, fmt.Errorf("_aws.Timestamp missing")
	}
	if len(meta.CloudWatchMetrics) != 1 {
		return EMF{}, fmt.Errorf("%d CloudWatchMetrics directives, want 1", len(meta.CloudWatchMetrics))
	}
	d := meta.CloudWatchMetrics[0]
	e := EMF{Namespace: d.Namespace, Dimensions: d.Dimensions, Values: map[string]any{},
		Metrics: map[string]float64{}, Units: map[string]string{}}
	for k, v := range doc {
		if k == "_aws" {
			continue
		}
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			return EMF{}, fmt.Errorf("%s: %w", k, err)
		}
		e.Values[k] = val
	}
	for _, m := range d.Metrics {
		n, ok := e.Values[m.Name].(float64)
		if !ok {
			return EMF{}, fmt.Errorf("declared metric %s has no numeric value", m.Name)
		}
		e.Metrics[m.Name], e.Units[m.Name] = n, m.Unit
		e.Order = append(e.Order, m.Name)
	}
	for _, set := range d.Dimensions {
		for _, dim := range set {
			if _, ok := e.Values[dim].(string); !ok {
				return EMF{}, fmt.Errorf("dimension %s has no string value", dim)
			}
		}
	}
	return e, nil
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
