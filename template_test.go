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
	"github.com/google/go-cmp/cmp/cmpopts"
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

// templateGSIs returns every global secondary index of the evaluated
// table properties props, in the template's order.
func templateGSIs(t *testing.T, props map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	gsis, _ := props["GlobalSecondaryIndexes"].([]any)
	for _, g := range gsis {
		gsi, ok := g.(map[string]any)
		if !ok || gsi["IndexName"] == nil {
			t.Fatalf("global secondary index %v has no IndexName", g)
		}
		out = append(out, gsi)
	}
	return out
}

// TestTemplateBillingModeOnDemand checks the default: the BillingMode
// parameter offers on demand (the default) and provisioned, and with the
// default the table and every index are on demand, with no
// ProvisionedThroughput (DynamoDB refuses one on a PAY_PER_REQUEST table)
// and no auto scaling resource at all.
func TestTemplateBillingModeOnDemand(t *testing.T) {
	tpl := deployedTemplate(t)
	param, _ := tpl["Parameters"].(map[string]any)["BillingMode"].(map[string]any)
	if param["Default"] != "PAY_PER_REQUEST" || fmt.Sprint(param["AllowedValues"]) != "[PAY_PER_REQUEST PROVISIONED]" {
		t.Errorf("BillingMode: default %v, allowed %v; want PAY_PER_REQUEST of [PAY_PER_REQUEST PROVISIONED]", param["Default"], param["AllowedValues"])
	}
	res := evalTemplate(t, tpl, nil)
	table := res["TimerTable"]["Properties"].(map[string]any)
	if table["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("TimerTable's BillingMode is %v, want PAY_PER_REQUEST", table["BillingMode"])
	}
	if pt, ok := table["ProvisionedThroughput"]; ok {
		t.Errorf("TimerTable has ProvisionedThroughput %v on demand", pt)
	}
	for _, gsi := range templateGSIs(t, table) {
		if pt, ok := gsi["ProvisionedThroughput"]; ok {
			t.Errorf("index %v has ProvisionedThroughput %v on demand", gsi["IndexName"], pt)
		}
	}
	for logical, r := range res {
		if typ, _ := r["Type"].(string); strings.HasPrefix(typ, "AWS::ApplicationAutoScaling::") {
			t.Errorf("on demand deploys %s (%s)", logical, typ)
		}
	}
}

// TestTemplateBillingModeProvisioned checks BillingMode=PROVISIONED: the
// table and every one of its global secondary indexes have a
// ProvisionedThroughput,
// and a read and a write scalable target (ResourceId table/<the table> or
// table/<the table>/index/<the index>, DynamoDB's dimensions) between a
// minimum and a maximum that hold the initial throughput, each with one
// target tracking policy at 70% of its utilisation metric; nothing scales
// anything else. The Min/Max parameters reach the targets.
func TestTemplateBillingModeProvisioned(t *testing.T) {
	tpl := deployedTemplate(t)
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		// want is the expected [min, max] of the read and write targets;
		// nil checks only min <= max (the defaults).
		want map[string][2]float64
	}{
		{name: "defaults", overrides: map[string]string{"BillingMode": "PROVISIONED"}},
		{name: "set", overrides: map[string]string{"BillingMode": "PROVISIONED",
			"MinReadCapacity": "7", "MaxReadCapacity": "700", "MinWriteCapacity": "3", "MaxWriteCapacity": "300"},
			want: map[string][2]float64{"Read": {7, 700}, "Write": {3, 300}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := evalTemplate(t, tpl, tc.overrides)
			table := res["TimerTable"]["Properties"].(map[string]any)
			if table["BillingMode"] != "PROVISIONED" {
				t.Errorf("TimerTable's BillingMode is %v, want PROVISIONED", table["BillingMode"])
			}
			// What must scale: the table and each index, read and write,
			// with the throughput it starts with.
			type dim struct{ ResourceID, Dimension string }
			initial := map[dim]float64{}
			addThroughput := func(what, resourceID, kind string, pt any) {
				m, ok := pt.(map[string]any)
				if !ok {
					t.Errorf("%s has no ProvisionedThroughput (PROVISIONED needs one on the table and on every index)", what)
					return
				}
				for _, rw := range []string{"Read", "Write"} {
					units, ok := m[rw+"CapacityUnits"].(float64)
					if !ok || units < 1 {
						t.Errorf("%s: %sCapacityUnits %v", what, rw, m[rw+"CapacityUnits"])
					}
					initial[dim{resourceID, "dynamodb:" + kind + ":" + rw + "CapacityUnits"}] = units
				}
			}
			addThroughput("TimerTable", "table/<TimerTable>", "table", table["ProvisionedThroughput"])
			indexes := templateGSIs(t, table)
			if len(indexes) == 0 {
				t.Fatal("TimerTable has no global secondary index; this test expects the template's byGroup at least")
			}
			for _, gsi := range indexes {
				addThroughput(fmt.Sprintf("index %v", gsi["IndexName"]), fmt.Sprintf("table/<TimerTable>/index/%v", gsi["IndexName"]),
					"index", gsi["ProvisionedThroughput"])
			}

			type target struct {
				dim
				Logical  string
				Min, Max float64
				Policies []string
			}
			targets := map[string]*target{} // by logical id
			got := map[dim]*target{}
			for logical, r := range res {
				if r["Type"] != "AWS::ApplicationAutoScaling::ScalableTarget" {
					continue
				}
				p := r["Properties"].(map[string]any)
				lo, _ := p["MinCapacity"].(float64)
				hi, _ := p["MaxCapacity"].(float64)
				tg := &target{dim: dim{fmt.Sprint(p["ResourceId"]), fmt.Sprint(p["ScalableDimension"])}, Logical: logical, Min: lo, Max: hi}
				if p["ServiceNamespace"] != "dynamodb" {
					t.Errorf("%s: ServiceNamespace %v, want dynamodb", logical, p["ServiceNamespace"])
				}
				if _, ok := p["RoleARN"]; ok {
					t.Errorf("%s has a RoleARN; DynamoDB's service-linked role is the one to use", logical)
				}
				if prev, dup := got[tg.dim]; dup {
					t.Errorf("%s and %s both scale %v", logical, prev.Logical, tg.dim)
				}
				targets[logical], got[tg.dim] = tg, tg
			}
			for logical, r := range res {
				if r["Type"] != "AWS::ApplicationAutoScaling::ScalingPolicy" {
					continue
				}
				p := r["Properties"].(map[string]any)
				ref := fmt.Sprint(p["ScalingTargetId"])
				tg := targets[strings.Trim(ref, "<>")]
				if tg == nil {
					t.Errorf("%s: ScalingTargetId %s is not a scalable target of the template", logical, ref)
					continue
				}
				tg.Policies = append(tg.Policies, logical)
				cfg, _ := p["TargetTrackingScalingPolicyConfiguration"].(map[string]any)
				metric, _ := cfg["PredefinedMetricSpecification"].(map[string]any)
				rw := "Read"
				if strings.HasSuffix(tg.Dimension, "WriteCapacityUnits") {
					rw = "Write"
				}
				if p["PolicyType"] != "TargetTrackingScaling" || cfg["TargetValue"] != 70.0 ||
					metric["PredefinedMetricType"] != "DynamoDB"+rw+"CapacityUtilization" {
					t.Errorf("%s (%v): PolicyType %v, TargetValue %v, metric %v; want TargetTrackingScaling at 70 of DynamoDB%sCapacityUtilization",
						logical, tg.dim, p["PolicyType"], cfg["TargetValue"], metric["PredefinedMetricType"], rw)
				}
			}

			var want, have []dim
			for d := range initial {
				want = append(want, d)
			}
			for d, tg := range got {
				have = append(have, d)
				if len(tg.Policies) != 1 {
					t.Errorf("%v has %d scaling policies %v, want 1", d, len(tg.Policies), tg.Policies)
				}
				if tg.Min < 1 || tg.Min > tg.Max {
					t.Errorf("%v scales between %v and %v", d, tg.Min, tg.Max)
				}
				if units, ok := initial[d]; ok && (units < tg.Min || units > tg.Max) {
					t.Errorf("%v starts at %v units, outside its scaling range %v-%v", d, units, tg.Min, tg.Max)
				}
				rw := "Read"
				if strings.HasSuffix(d.Dimension, "WriteCapacityUnits") {
					rw = "Write"
				}
				if w, ok := tc.want[rw]; ok && (tg.Min != w[0] || tg.Max != w[1]) {
					t.Errorf("%v scales between %v and %v, want the parameters' %v and %v", d, tg.Min, tg.Max, w[0], w[1])
				}
			}
			byKey := func(a, b dim) bool { return a.ResourceID+a.Dimension < b.ResourceID+b.Dimension }
			if diff := cmp.Diff(want, have, cmpopts.SortSlices(byKey)); diff != "" {
				t.Errorf("scalable targets (-the table and its indexes, read and write +the template's targets):\n%s", diff)
			}
		})
	}
}
