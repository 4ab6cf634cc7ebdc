package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cfnEval evaluates the intrinsic functions of the deployed template for one
// set of parameter values, as CloudFormation would before creating
// anything: Ref (of a parameter, a resource, a pseudo parameter, or
// AWS::NoValue, which removes the property or list element it is),
// Fn::GetAtt, Fn::Sub, Fn::If, and Fn::Equals and Fn::Not in Conditions.
// Any other intrinsic is an error, so that a template using one cannot pass
// unevaluated. What differs between its users is what the template's
// resources and pseudo parameters resolve to (resourceRef, getAtt) and
// whether the leaves stay JSON values (stringLeaves): evalTemplate resolves
// them to symbols that say which resource a value names, the IAM test
// (newIAMStack) to the local stack's names and ARNs.
type cfnEval struct {
	params     map[string]any // each parameter's default, or its override
	conditions map[string]any // the template's Conditions
	// resourceRef is the value of Ref name (or ${name} in an Fn::Sub) for
	// a name that is not a parameter: a resource's logical id or a pseudo
	// parameter (AWS::Region, ...).
	resourceRef func(name string) (any, error)
	// getAtt is the value of Fn::GetAtt logical.attr (or ${logical.attr}
	// in an Fn::Sub).
	getAtt func(logical, attr string) (any, error)
	// stringLeaves resolves every number and boolean, a literal or a
	// parameter's, to its string form, for users that want only strings
	// (environment variables, policy documents).
	stringLeaves bool
}

// cfnSubVar is a ${...} of an Fn::Sub.
var cfnSubVar = regexp.MustCompile(`\$\{[^}]*\}`)

// newCfnEval returns an evaluator of tpl's Conditions and intrinsics for the
// parameters' defaults with overrides applied; a Number override is parsed
// as CloudFormation passes it on, as a number. A parameter with neither a
// default nor an override, or an override of no parameter, fails the test.
// The caller sets resourceRef and getAtt.
func newCfnEval(t *testing.T, tpl map[string]any, overrides map[string]string) *cfnEval {
	t.Helper()
	e := &cfnEval{params: map[string]any{}}
	e.conditions, _ = tpl["Conditions"].(map[string]any)
	params, _ := tpl["Parameters"].(map[string]any)
	for name, p := range params {
		def, ok := p.(map[string]any)["Default"]
		if _, over := overrides[name]; !ok && !over {
			t.Fatalf("parameter %s has no default", name)
		}
		e.params[name] = def
	}
	for name, v := range overrides {
		p, ok := params[name].(map[string]any)
		if !ok {
			t.Fatalf("override of unknown parameter %s", name)
		}
		e.params[name] = v
		if p["Type"] == "Number" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("parameter %s: %q is not a number", name, v)
			}
			e.params[name] = f
		}
	}
	return e
}

// evalTemplate returns tpl's resources (type and resolved properties) for
// the parameters' defaults with overrides applied (see newCfnEval), without
// those whose Condition is false. A resource's Ref (and a pseudo
// parameter's) is "<Logical>" and an attribute "<Logical.Attr>", which is
// enough to tell which resource a value names.
func evalTemplate(t *testing.T, tpl map[string]any, overrides map[string]string) map[string]map[string]any {
	t.Helper()
	e := newCfnEval(t, tpl, overrides)
	resources, _ := tpl["Resources"].(map[string]any)
	e.resourceRef = func(name string) (any, error) {
		if _, ok := resources[name]; ok || strings.HasPrefix(name, "AWS::") {
			return "<" + name + ">", nil
		}
		return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
	}
	e.getAtt = func(logical, attr string) (any, error) { return "<" + logical + "." + attr + ">", nil }
	out := map[string]map[string]any{}
	for logical, r := range resources {
		r := r.(map[string]any)
		if c, ok := r["Condition"].(string); ok {
			keep, err := e.condition(c)
			if err != nil {
				t.Fatalf("%s: %v", logical, err)
			}
			if !keep {
				continue
			}
		}
		props, err := e.resolve(r["Properties"])
		if err != nil {
			t.Fatalf("%s: %v", logical, err)
		}
		p, _ := props.(map[string]any)
		out[logical] = map[string]any{"Type": r["Type"], "Properties": p}
	}
	return out
}

// condition evaluates the template's condition name.
func (e *cfnEval) condition(name string) (bool, error) {
	c, ok := e.conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	return e.truth(c)
}

// truth evaluates a condition function: Fn::Equals (of the values' string
// forms) and Fn::Not.
func (e *cfnEval) truth(v any) (bool, error) {
	m, _ := v.(map[string]any)
	if eq, ok := m["Fn::Equals"].([]any); ok && len(m) == 1 && len(eq) == 2 {
		a, err := e.resolve(eq[0])
		if err != nil {
			return false, err
		}
		b, err := e.resolve(eq[1])
		return fmt.Sprint(a) == fmt.Sprint(b), err
	}
	if not, ok := m["Fn::Not"].([]any); ok && len(m) == 1 && len(not) == 1 {
		t, err := e.truth(not[0])
		return !t, err
	}
	return false, fmt.Errorf("condition %v: this test evaluates only Fn::Equals and Fn::Not", v)
}

// leaf is a number or boolean as the evaluator's user wants it.
func (e *cfnEval) leaf(v any) any {
	if e.stringLeaves {
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(x)
		}
	}
	return v
}

// ref is the value of Ref name: a parameter's, or resourceRef's.
func (e *cfnEval) ref(name string) (any, error) {
	if v, ok := e.params[name]; ok {
		return e.leaf(v), nil
	}
	return e.resourceRef(name)
}

// resolve returns v with its intrinsic functions evaluated. An AWS::NoValue
// removes the property or list element it is; v itself being one resolves
// to nil.
func (e *cfnEval) resolve(v any) (any, error) {
	r, _, err := e.value(v)
	return r, err
}

// value is resolve's work; present is false for AWS::NoValue.
func (e *cfnEval) value(v any) (resolved any, present bool, err error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return e.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, el := range x {
			r, ok, err := e.value(el)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out[k] = r
			}
		}
		return out, true, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, el := range x {
			r, ok, err := e.value(el)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out = append(out, r)
			}
		}
		return out, true, nil
	}
	return e.leaf(v), true, nil
}

// intrinsic evaluates the intrinsic function fn of argument arg; present
// is false for AWS::NoValue.
func (e *cfnEval) intrinsic(fn string, arg any) (resolved any, present bool, err error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		if name == "AWS::NoValue" {
			return nil, false, nil
		}
		v, err := e.ref(name)
		return v, true, err
	case "Fn::GetAtt":
		// "Logical.Attr" or ["Logical", "Attr"]
		var parts []string
		switch a := arg.(type) {
		case string:
			parts = strings.SplitN(a, ".", 2)
		case []any:
			for _, p := range a {
				s, _ := p.(string)
				parts = append(parts, s)
			}
		}
		if len(parts) != 2 {
			return nil, false, fmt.Errorf("Fn::GetAtt %v", arg)
		}
		v, err := e.getAtt(parts[0], parts[1])
		return v, true, err
	case "Fn::Sub":
		s, err := e.sub(arg)
		return s, true, err
	case "Fn::If":
		a, _ := arg.([]any)
		name, ok := "", len(a) == 3
		if ok {
			name, ok = a[0].(string)
		}
		if !ok {
			return nil, false, fmt.Errorf("Fn::If %v", arg)
		}
		c, err := e.condition(name)
		if err != nil {
			return nil, false, err
		}
		if c {
			return e.value(a[1])
		}
		return e.value(a[2])
	}
	return nil, false, fmt.Errorf("intrinsic %s is not evaluated by this test", fn)
}

// sub evaluates Fn::Sub's argument: "string" or ["string", {variable:
// value}]. A ${variable} is the variable's resolved value, a ${Logical.Attr}
// an attribute, any other ${name} a Ref, and ${!Literal} is "${Literal}".
func (e *cfnEval) sub(arg any) (string, error) {
	s, ok := arg.(string)
	var vars map[string]any
	if a, isList := arg.([]any); isList && len(a) == 2 {
		s, ok = a[0].(string)
		vars, _ = a[1].(map[string]any)
	}
	if !ok {
		return "", fmt.Errorf("Fn::Sub %v: not a string or [string, variables]", arg)
	}
	var firstErr error
	out := cfnSubVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var (
			v   any
			err error
		)
		if val, ok := vars[name]; ok {
			v, err = e.resolve(val)
		} else if logical, attr, ok := strings.Cut(name, "."); ok {
			v, err = e.getAtt(logical, attr)
		} else {
			v, err = e.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return out, firstErr
}
