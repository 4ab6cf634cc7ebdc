package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestLambdaBuild runs what `sam build` runs for each function (the
// Makefile's build-<function> target, BuildMethod makefile) and checks the
// result is what provided.al2023 on arm64 needs: a static aarch64 ELF
// named bootstrap, the same whatever the build host has installed.
func TestLambdaBuild(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("builds the Lambda binary; skipped in -short mode")
	}
	tpl := deployedTemplate(t)
	res, _ := tpl["Resources"].(map[string]any)
	var functions []string
	for name, r := range res {
		r, _ := r.(map[string]any)
		if r["Type"] != "AWS::Lambda::Function" {
			continue
		}
		functions = append(functions, name)
		md, _ := r["Metadata"].(map[string]any)
		if md["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod %v, want makefile", name, md["BuildMethod"])
		}
		props, _ := r["Properties"].(map[string]any)
		if props["Runtime"] != "provided.al2023" || props["Handler"] != "bootstrap" || fmt.Sprint(props["Architectures"]) != "[arm64]" {
			t.Errorf("%s: runtime %v, handler %v, architectures %v", name, props["Runtime"], props["Handler"], props["Architectures"])
		}
	}
	sort.Strings(functions)
	if diff := cmp.Diff([]string{"ApiFunction", "InvokeFunction", "SweepFunction"}, functions); diff != "" {
		t.Fatalf("functions (-want +got):\n%s", diff)
	}
	// Every target must exist (make -n fails on a missing one); one is built.
	for _, f := range functions {
		if out, err := exec.Command("make", "-n", "build-"+f, "ARTIFACTS_DIR=/nonexistent").CombinedOutput(); err != nil ||
			!strings.Contains(string(out), "CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build") {
			t.Errorf("make build-%s: %v\n%s", f, err, out)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("make", "build-InvokeFunction", "ARTIFACTS_DIR="+dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=") // the host's own settings must not leak in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-InvokeFunction: %v\n%s", err, out)
	}
	f, err := elf.Open(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("bootstrap is %v %v, want aarch64 ELF64", f.Machine, f.Class)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("bootstrap is dynamically linked (%v)", p.Type)
		}
	}
}

// TestTimeoutsFitTogether checks, in the deployed template, the relation
// the invoker's guarantee rests on: the longest call (MaxTimeoutSeconds)
// plus the invoker's own work (InvokeMarginSeconds) fits in the invoker's
// Lambda timeout, so Lambda never cuts a call off (its claim would never be
// settled and SQS would deliver it again as if new); and the fire queue's
// visibility timeout is VisibilityFactor times the function's, as AWS
// advises for an SQS event source. The local stack uses the same values.
func TestTimeoutsFitTogether(t *testing.T) {
	tpl := deployedTemplate(t)
	number := func(v any, what string) int {
		t.Helper()
		f, ok := v.(float64)
		if !ok {
			t.Fatalf("%s is %v, not a number", what, v)
		}
		return int(f)
	}
	invoke := number(templateResource(t, tpl, "InvokeFunction")["Timeout"], "InvokeFunction's Timeout")
	visibility := number(templateResource(t, tpl, "FireQueue")["VisibilityTimeout"], "FireQueue's VisibilityTimeout")
	if need := MaxTimeoutSeconds + InvokeMarginSeconds; invoke < need {
		t.Errorf("InvokeFunction's Timeout is %d s; the longest call (%d s) and the invoker's margin (%d s) need %d s",
			invoke, MaxTimeoutSeconds, InvokeMarginSeconds, need)
	}
	if need := VisibilityFactor * invoke; visibility < need {
		t.Errorf("FireQueue's VisibilityTimeout is %d s; %d times the invoker's %d s is %d s", visibility, VisibilityFactor, invoke, need)
	}
	if got := deployedTimeouts().Invoke; got != time.Duration(invoke)*time.Second {
		t.Errorf("the local stack's invoker timeout is %s, the template's %d s", got, invoke)
	}
	if got := deployedQueues().Fire.VisibilitySeconds; got != visibility {
		t.Errorf("the local fire queue's visibility is %d s, the template's %d s", got, visibility)
	}
	// The API enforces the bound the relation assumes.
	over := HTTPTarget{URL: "https://example.com/", TimeoutSeconds: MaxTimeoutSeconds + 1}
	if err := over.Validate("/callclock/"); ErrorCode(err) != EINVALID {
		t.Errorf("timeoutSeconds %d: %v, want refused", MaxTimeoutSeconds+1, err)
	}
	at := HTTPTarget{URL: "https://example.com/", TimeoutSeconds: MaxTimeoutSeconds}
	if err := at.Validate("/callclock/"); err != nil {
		t.Errorf("timeoutSeconds %d: %v, want accepted", MaxTimeoutSeconds, err)
	}
}
