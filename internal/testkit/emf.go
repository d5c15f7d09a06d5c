package testkit

import (
	"encoding/json"
	"fmt"
)

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
