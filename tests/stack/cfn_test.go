//go:build integration

package stack

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// A cfnTemplate is a CloudFormation/SAM template as plain Go values: maps,
// slices, strings, ints, bools, with intrinsic functions in their long form
// ({"Ref": x}, {"Fn::GetAtt": [r, a]}, ...).
type cfnTemplate struct {
	Parameters                          map[string]map[string]any
	Conditions, Rules, Globals, Outputs map[string]any
	Resources                           map[string]cfnResource
}

type cfnResource struct {
	Type, Condition      string
	Properties, Metadata map[string]any
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
	top := asMap(v)
	t := &cfnTemplate{Parameters: map[string]map[string]any{}, Conditions: asMap(top["Conditions"]), Rules: asMap(top["Rules"]),
		Globals: asMap(top["Globals"]), Outputs: asMap(top["Outputs"]), Resources: map[string]cfnResource{}}
	for name, p := range asMap(top["Parameters"]) {
		t.Parameters[name] = asMap(p)
	}
	for id, r := range asMap(top["Resources"]) {
		m := asMap(r)
		t.Resources[id] = cfnResource{Type: str(m["Type"]), Condition: str(m["Condition"]), Properties: asMap(m["Properties"]), Metadata: asMap(m["Metadata"])}
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
		v = n.Value // a scalar under a CloudFormation tag is the function's argument, as written
		if !isCfnTag(n.Tag) {
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
		}
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	if !isCfnTag(n.Tag) {
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

func isCfnTag(tag string) bool { return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") }

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
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
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func num(v any) (int, bool) {
	i, err := strconv.Atoi(str(v))
	return i, err == nil
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
	missing []string // problems met while evaluating: refs to absent things, unsupported functions
}

// newEvaluation evaluates the template for these parameter values (the
// defaults for the others); an error is what CloudFormation would refuse the
// deploy for: a bad parameter value or a Rule's assertion.
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
	for _, name := range slices.Sorted(maps.Keys(t.Rules)) {
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
	if allowed, ok := p["AllowedValues"]; ok && !slices.ContainsFunc(asList(allowed), func(a any) bool { return str(a) == v }) {
		return fmt.Errorf("parameter %s=%q is not one of its AllowedValues %v", name, v, allowed)
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
		n, ok := num(v)
		if !ok {
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

// condExpr evaluates the condition functions the template uses; any other is
// an error, so that a new one cannot pass unchecked.
func (e *evaluation) condExpr(expr any, depth int) (bool, error) {
	m := asMap(expr)
	if len(m) != 1 {
		return false, fmt.Errorf("condition expression %v is not one function", expr)
	}
	for fn, arg := range m {
		args := asList(arg)
		switch {
		case fn == "Condition":
			return e.condition(str(arg), depth)
		case fn == "Fn::Equals" && len(args) == 2:
			return str(e.Eval(args[0])) == str(e.Eval(args[1])), nil
		case fn == "Fn::Not" && len(args) == 1:
			b, err := e.condExpr(args[0], depth)
			return !b, err
		}
		return false, fmt.Errorf("unsupported condition %s %v", fn, arg)
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

// intrinsic evaluates the functions the template uses: Ref, Fn::GetAtt, Fn::If
// and Fn::Sub of a string; another Fn:: is reported.
func (e *evaluation) intrinsic(fn string, arg any) (any, bool) {
	args := asList(arg)
	switch {
	case fn == "Ref":
		return e.ref(str(arg)), true
	case fn == "Fn::GetAtt" && len(args) == 2:
		e.needResource(str(args[0]))
		return "getatt:" + str(args[0]) + "." + str(args[1]), true
	case fn == "Fn::If" && len(args) == 3:
		b, err := e.condition(str(args[0]), 0)
		if err != nil {
			e.missing = append(e.missing, err.Error())
		}
		if b {
			return e.Eval(args[1]), true
		}
		return e.Eval(args[2]), true
	case fn == "Fn::Sub" && len(args) == 1:
		return subPattern.ReplaceAllStringFunc(str(arg), func(m string) string {
			name := m[2 : len(m)-1]
			if res, attr, ok := strings.Cut(name, "."); ok {
				e.needResource(res)
				return "getatt:" + res + "." + attr
			}
			return str(e.ref(name))
		}), true
	case strings.HasPrefix(fn, "Fn::"):
		e.missing = append(e.missing, fmt.Sprintf("unsupported %s %v", fn, arg))
		return "", true
	}
	return nil, false
}

var subPattern = regexp.MustCompile(`\$\{[^}!]+\}`)

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
	} else if r.Condition != "" && !e.conds[r.Condition] {
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
	return asMap(e.Eval(mergeGlobals(asMap(e.t.Globals["Function"]), e.t.Resources[id].Properties)))
}

func mergeGlobals(global, local map[string]any) map[string]any {
	out := maps.Clone(global)
	for k, v := range local {
		gm, gok := out[k].(map[string]any)
		lm, lok := v.(map[string]any)
		gl, glok := out[k].([]any)
		ll, llok := v.([]any)
		switch {
		case gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm):
			out[k] = mergeGlobals(gm, lm)
		case glok && llok:
			out[k] = append(slices.Clone(gl), ll...)
		default:
			out[k] = v
		}
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	for k := range m {
		return len(m) == 1 && (k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::"))
	}
	return false
}
