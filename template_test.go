package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// samTransform is the Python that turns template.yaml into the plain
// CloudFormation AWS would deploy, with the same SAM translator cfn-lint
// uses: the generated roles (with the managed policies SAM attaches), the
// event source mappings and permissions, each function's environment.
// Intrinsic functions (!Ref, !GetAtt, !Sub) are left as their JSON forms.
const samTransform = `
import json, sys
from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform
tpl, problems = decode(sys.argv[1])
if problems:
    sys.exit("template.yaml: " + "; ".join(str(p) for p in problems))
t = Transform(filename=sys.argv[1], template=tpl, region="us-east-1")
errs = t.transform_template()
if errs:
    sys.exit("SAM transform: " + "; ".join(str(e) for e in errs))
json.dump(t._template, sys.stdout, default=str)
`

// deployedTemplate returns template.yaml as CloudFormation deploys it, after
// the SAM transform. It needs python3 with cfn-lint (which brings the SAM
// translator); without them the test is skipped, except under CI, where it
// fails.
func deployedTemplate(t *testing.T) map[string]any {
	t.Helper()
	out, err := exec.Command("python3", "-c", samTransform, "template.yaml").Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("transform template.yaml (needs python3 and cfn-lint): %s", msg)
		}
		t.Skipf("transform template.yaml (needs python3 and cfn-lint): %s", msg)
	}
	var tpl map[string]any
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatalf("transformed template: %v", err)
	}
	return tpl
}

// templateResource returns the properties of the resource named logical in
// tpl, failing the test when it is missing.
func templateResource(t *testing.T, tpl map[string]any, logical string) map[string]any {
	t.Helper()
	res, _ := tpl["Resources"].(map[string]any)
	r, ok := res[logical].(map[string]any)
	if !ok {
		t.Fatalf("template has no resource %s", logical)
	}
	props, _ := r["Properties"].(map[string]any)
	return props
}

// TestDeployedTemplate checks that the transform yields the resources the
// rest of the tests read: one role per function and the fire queue's event
// source mapping.
func TestDeployedTemplate(t *testing.T) {
	tpl := deployedTemplate(t)
	for _, name := range []string{"ApiFunctionRole", "SweepFunctionRole", "InvokeFunctionRole", "FireQueue"} {
		if props := templateResource(t, tpl, name); props == nil {
			t.Errorf("%s has no properties", name)
		}
	}
}
