package stack

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A cfnTemplate is a CloudFormation/SAM template as plain Go values: maps,
// slices, strings, ints, bools, with intrinsic functions in their long form
// ({"Ref": x}, {"Fn::GetAtt": [r, a]}, ...).
type cfnTemplate struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Rules      map[string]any
	Globals    map[string]any
	Resources  map[string]cfnResource
	Outputs    map[string]any
}

type cfnResource struct {
	Type       string
	Condition  string
	Properties map[string]any
	Metadata   map[string]any
}

func loadTemplate(path string) (*cfnTemplate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: not one YAML document", path)
	}
	v, err := nodeValue(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a mapping", path)
	}
	t := &cfnTemplate{
		Parameters: map[string]map[string]any{},
		Conditions: asMap(top["Conditions"]),
		Rules:      asMap(top["Rules"]),
		Globals:    asMap(top["Globals"]),
		Resources:  map[string]cfnResource{},
		Outputs:    asMap(top["Outputs"]),
	}
	for name, p := range asMap(top["Parameters"]) {
		t.Parameters[name] = asMap(p)
	}
	for id, r := range asMap(top["Resources"]) {
		m := asMap(r)
		cond, _ := m["Condition"].(string)
		typ, _ := m["Type"].(string)
		t.Resources[id] = cfnResource{Type: typ, Condition: cond, Properties: asMap(m["Properties"]), Metadata: asMap(m["Metadata"])}
	}
	return t, nil
}

// nodeValue converts a YAML node to plain values, mapping CloudFormation's short
// tags to the long form: !Ref x -> {"Ref": x}, !GetAtt r.a -> {"Fn::GetAtt": [r, a]},
// !Condition c -> {"Condition": c}, any other !X -> {"Fn::X": ...}.
func nodeValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			val, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			i, err := strconv.Atoi(n.Value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			v = i
		case "!!bool":
			v = n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
		case "!!null":
			v = nil
		default:
			v = n.Value
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	switch tag := n.Tag[1:]; tag {
	case "Ref", "Condition":
		return map[string]any{tag: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q has no attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + tag: v}, nil
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

// str renders a scalar as CloudFormation would pass it on: numbers and booleans as text.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func num(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case string:
		i, err := strconv.Atoi(x)
		return i, err == nil
	}
	return 0, false
}

// noValue is what AWS::NoValue evaluates to; containers drop it.
type noValueT struct{}

var noValue = noValueT{}

// An evaluation is the template as one deployment with given parameters would
// see it. References to resources stay symbolic: "ref:Name" for !Ref Name,
// "getatt:Name.Attr" for !GetAtt Name.Attr, "{AWS::Region}" for a pseudo parameter.
type evaluation struct {
	t       *cfnTemplate
	params  map[string]string
	conds   map[string]bool
	missing []string // problems met while evaluating: refs to absent things
}

func newEvaluation(t *cfnTemplate, overrides map[string]string) (*evaluation, error) {
	e := &evaluation{t: t, params: map[string]string{}, conds: map[string]bool{}}
	for name, p := range t.Parameters {
		if d, ok := p["Default"]; ok {
			e.params[name] = str(d)
		}
	}
	for k, v := range overrides {
		if _, ok := t.Parameters[k]; !ok {
			return nil, fmt.Errorf("no parameter %s", k)
		}
		e.params[k] = v
	}
	for name, p := range t.Parameters {
		v, ok := e.params[name]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no default and no value", name)
		}
		if err := checkParamValue(name, p, v); err != nil {
			return nil, err
		}
	}
	for name := range t.Conditions {
		b, err := e.condition(name, 0)
		if err != nil {
			return nil, err
		}
		e.conds[name] = b
	}
	for _, name := range sortedKeys(t.Rules) {
		rule := asMap(t.Rules[name])
		applies := true
		if rc, ok := rule["RuleCondition"]; ok {
			b, err := e.condExpr(rc, 0)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			applies = b
		}
		for _, a := range asList(rule["Assertions"]) {
			ok, err := e.condExpr(asMap(a)["Assert"], 0)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if applies && !ok {
				return nil, fmt.Errorf("rule %s refuses the deploy: %s", name, str(asMap(a)["AssertDescription"]))
			}
		}
	}
	return e, nil
}

func checkParamValue(name string, p map[string]any, v string) error {
	if allowed, ok := p["AllowedValues"]; ok {
		found := false
		for _, a := range asList(allowed) {
			if str(a) == v {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("parameter %s=%q is not one of its AllowedValues %v", name, v, allowed)
		}
	}
	if pat, ok := p["AllowedPattern"].(string); ok {
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			return fmt.Errorf("parameter %s: AllowedPattern: %w", name, err)
		}
		if !re.MatchString(v) {
			return fmt.Errorf("parameter %s=%q does not match its AllowedPattern", name, v)
		}
	}
	if p["Type"] == "Number" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("parameter %s=%q is not a number", name, v)
		}
		if lo, ok := num(p["MinValue"]); ok && n < lo {
			return fmt.Errorf("parameter %s=%d is below MinValue %d", name, n, lo)
		}
		if hi, ok := num(p["MaxValue"]); ok && n > hi {
			return fmt.Errorf("parameter %s=%d is above MaxValue %d", name, n, hi)
		}
	}
	return nil
}

func (e *evaluation) condition(name string, depth int) (bool, error) {
	if b, ok := e.conds[name]; ok {
		return b, nil
	}
	expr, ok := e.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	if depth > 20 {
		return false, fmt.Errorf("condition %s: too deep", name)
	}
	return e.condExpr(expr, depth+1)
}

func (e *evaluation) condExpr(expr any, depth int) (bool, error) {
	m := asMap(expr)
	if len(m) != 1 {
		return false, fmt.Errorf("condition expression %v is not one function", expr)
	}
	for fn, arg := range m {
		args := asList(arg)
		switch fn {
		case "Condition":
			return e.condition(str(arg), depth)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals needs 2 arguments")
			}
			return str(e.Eval(args[0])) == str(e.Eval(args[1])), nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not needs 1 argument")
			}
			b, err := e.condExpr(args[0], depth)
			return !b, err
		case "Fn::And", "Fn::Or":
			and := fn == "Fn::And"
			res := and
			for _, a := range args {
				b, err := e.condExpr(a, depth)
				if err != nil {
					return false, err
				}
				if and {
					res = res && b
				} else {
					res = res || b
				}
			}
			return res, nil
		default:
			return false, fmt.Errorf("unsupported condition function %s", fn)
		}
	}
	panic("unreachable")
}

// Eval resolves intrinsic functions in v. AWS::NoValue comes back as noValue and
// is dropped from maps and lists.
func (e *evaluation) Eval(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, item := range x {
			if r := e.Eval(item); r != noValue {
				out = append(out, r)
			}
		}
		return out
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if r, ok := e.intrinsic(fn, arg); ok {
					return r
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, item := range x {
			if r := e.Eval(item); r != noValue {
				out[k] = r
			}
		}
		return out
	default:
		return v
	}
}

func (e *evaluation) intrinsic(fn string, arg any) (any, bool) {
	switch fn {
	case "Ref":
		return e.ref(str(arg)), true
	case "Fn::GetAtt":
		parts := asList(arg)
		if len(parts) != 2 {
			e.missing = append(e.missing, fmt.Sprintf("bad Fn::GetAtt %v", arg))
			return "", true
		}
		res := str(parts[0])
		e.needResource(res)
		return "getatt:" + res + "." + str(parts[1]), true
	case "Fn::If":
		args := asList(arg)
		if len(args) != 3 {
			e.missing = append(e.missing, fmt.Sprintf("bad Fn::If %v", arg))
			return "", true
		}
		b, err := e.condition(str(args[0]), 0)
		if err != nil {
			e.missing = append(e.missing, err.Error())
		}
		if b {
			return e.Eval(args[1]), true
		}
		return e.Eval(args[2]), true
	case "Fn::Sub":
		var tmpl string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			tmpl = a
		case []any:
			if len(a) != 2 {
				e.missing = append(e.missing, fmt.Sprintf("bad Fn::Sub %v", arg))
				return "", true
			}
			tmpl = str(a[0])
			for k, val := range asMap(a[1]) {
				vars[k] = e.Eval(val)
			}
		}
		return subPattern.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := m[2 : len(m)-1]
			if strings.HasPrefix(name, "!") {
				return "${" + name[1:] + "}"
			}
			if v, ok := vars[name]; ok {
				return str(v)
			}
			if res, attr, ok := strings.Cut(name, "."); ok {
				e.needResource(res)
				return "getatt:" + res + "." + attr
			}
			return str(e.ref(name))
		}), true
	case "Fn::Join":
		args := asList(arg)
		if len(args) != 2 {
			e.missing = append(e.missing, fmt.Sprintf("bad Fn::Join %v", arg))
			return "", true
		}
		var parts []string
		for _, p := range asList(e.Eval(args[1])) {
			parts = append(parts, str(p))
		}
		return strings.Join(parts, str(args[0])), true
	}
	return nil, false
}

var subPattern = regexp.MustCompile(`\$\{[^}]+\}`)

func (e *evaluation) ref(name string) any {
	if name == "AWS::NoValue" {
		return noValue
	}
	if strings.HasPrefix(name, "AWS::") {
		return "{" + name + "}"
	}
	if v, ok := e.params[name]; ok {
		return v
	}
	e.needResource(name)
	return "ref:" + name
}

// needResource records a reference to a resource that this deployment does not
// create: a CloudFormation error, or a reference to a resource left out by its
// Condition.
func (e *evaluation) needResource(name string) {
	r, ok := e.t.Resources[name]
	if !ok {
		e.missing = append(e.missing, fmt.Sprintf("reference to %s, which is neither a parameter nor a resource", name))
		return
	}
	if r.Condition != "" && !e.conds[r.Condition] {
		e.missing = append(e.missing, fmt.Sprintf("reference to %s, which this deployment does not create (condition %s is false)", name, r.Condition))
	}
}

// created reports whether a resource exists in this deployment.
func (e *evaluation) created(id string) bool {
	r, ok := e.t.Resources[id]
	return ok && (r.Condition == "" || e.conds[r.Condition])
}

// function is a serverless function's properties after SAM's Globals merge:
// maps merge key by key (recursively), lists concatenate (global first), other
// values are replaced, as samtranslator's plugins/globals does.
func (e *evaluation) function(id string) map[string]any {
	r := e.t.Resources[id]
	merged := mergeGlobals(asMap(e.t.Globals["Function"]), r.Properties)
	return asMap(e.Eval(merged))
}

func mergeGlobals(global, local map[string]any) map[string]any {
	out := make(map[string]any, len(global)+len(local))
	for k, v := range global {
		out[k] = v
	}
	for k, v := range local {
		gm, gok := out[k].(map[string]any)
		lm, lok := v.(map[string]any)
		if gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm) {
			out[k] = mergeGlobals(gm, lm)
			continue
		}
		gl, gok := out[k].([]any)
		ll, lok := v.([]any)
		if gok && lok {
			out[k] = append(append([]any{}, gl...), ll...)
			continue
		}
		out[k] = v
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
