package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// deployerExample is the Deployer's own example timer file
// (deployer-tests/timer-deployer.json in the Deployer's repository) with
// our names: the bare six-field cron, an upper-case protocol, a Slack
// channel.
const deployerExample = `{"name":"facilities-collect","deployment":{"enabled":true,"cron":"*/1 * * * ? *"},"request":{"protocol":"HTTPS","hostname":"blue.qa.example.com","port":443,"path":"/facilities/management/collect","method":"GET","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notification":{"slack":{"webhook":"aws-secret(/callclock/qa/slack)","channel":"shanktovoid","onFailure":true,"onSuccess":false}}}`

// augmentedDeployer is a file as the Deployer hands it to Callculon, with
// deployment.product, version and id merged in at deploy time (Callculon's
// payload.json, with a six-field cron and our names).
const augmentedDeployer = `{"name":"callculon-manual-test","deployment":{"enabled":true,"cron":"0 0 * * ? *","product":"callculon-manual-test","version":"1.0.0","id":"0-callculon-manual-test-0-0-0-000"},"request":{"protocol":"HTTPS","hostname":"blue.qa.example.com","port":443,"path":"/fhir/v0/dstu2/Patient/1011537977V693883","method":"GET","headers":{"xAuthorization":"Bearer aws-secret(/callclock/qa/token)"}},"notification":{"slack":{"webhook":"aws-secret(/callclock/slack/liberty)","channel":"shanktovoid","onFailure":true,"onSuccess":true}}}`

func TestReadDeployerTimer(t *testing.T) {
	rate := `"deployment":{"cron":"rate(5 minutes)"}`
	tests := []struct {
		name, in string
		want     DeployerTimer
		err      string
	}{
		{name: "the Deployer's example", in: deployerExample, want: DeployerTimer{ID: "facilities-collect", Enabled: true,
			Body: []byte(`{"schedule":"cron(*/1 * * * ? *)","http":{"method":"GET","url":"https://blue.qa.example.com/facilities/management/collect","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notify":{"webhook":"aws-secret(/callclock/qa/slack)","channel":"shanktovoid","onFailure":true,"onSuccess":false}}`)}},
		{name: "merged deployment metadata", in: augmentedDeployer, want: DeployerTimer{ID: "callculon-manual-test", Enabled: true, Product: "callculon-manual-test",
			Body: []byte(`{"schedule":"cron(0 0 * * ? *)","http":{"method":"GET","url":"https://blue.qa.example.com/fhir/v0/dstu2/Patient/1011537977V693883","headers":{"xAuthorization":"Bearer aws-secret(/callclock/qa/token)"}},"notify":{"webhook":"aws-secret(/callclock/slack/liberty)","channel":"shanktovoid","onFailure":true,"onSuccess":true},"deploymentInfo":{"product":"callculon-manual-test","version":"1.0.0","id":"0-callculon-manual-test-0-0-0-000"}}`)}},
		{name: "environment kept too", in: `{"name":"a","deployment":{"cron":"0 9 * * ? *","environment":"qa"},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"},"deploymentInfo":{"environment":"qa"}}`)}},
		{name: "extra spaces in the bare fields", in: `{"name":"a","deployment":{"cron":"  0  9 * * ?   * "},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"}}`)}},
		{name: "wrapped cron kept", in: `{"name":"a","deployment":{"cron":"cron(0 9 * * ? *)"},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"}}`)}},
		{name: "non-default port, default method", in: `{"name":"a",` + rate + `,"request":{"protocol":"HTTP","hostname":"h.example.com","port":8080,"path":"x"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h.example.com:8080/x"}}`)}},
		{name: "port as string, http 80 omitted, no path", in: `{"name":"a",` + rate + `,"request":{"protocol":"http","hostname":"h","port":"80"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h"}}`)}},
		{name: "disabled", in: `{"name":"a","deployment":{"enabled":false,"cron":"rate(5 minutes)"},"request":{"hostname":"h","method":"post","body":"{}"}}`,
			want: DeployerTimer{ID: "a", Enabled: false, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"POST","url":"https://h","body":"{}"}}`)}},
		{name: "unknown fields are warnings, case and all", in: `{"name":"a","owner":"x",` + rate + `,"request":{"hostname":"h","verb":"GET","Path":"/p"},"notification":{"email":{},"slack":{"webhook":"https://h/w","icon":":x:"}}}`,
			want: DeployerTimer{ID: "a", Enabled: true,
				Body:     []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"https://h"},"notify":{"webhook":"https://h/w"}}`),
				Warnings: []string{"unknown field owner ignored", "unknown field request.Path ignored", "unknown field request.verb ignored", "unknown field notification.email ignored", "unknown field notification.slack.icon ignored"}}},
		{name: "five-field Unix cron", in: `{"name":"a","deployment":{"cron":"0 0 * * *"},"request":{"hostname":"h"}}`,
			err: `deployment.cron "0 0 * * *" has five fields, as a Unix cron; AWS cron has six (minutes hours day-of-month month day-of-week year, with ? in one of the day fields): did you mean "0 0 * * ? *"?`},
		{name: "five fields, weekdays", in: `{"name":"a","deployment":{"cron":"30 8 * * 1-5"},"request":{"hostname":"h"}}`, err: `did you mean "30 8 ? * 2-6 *"?`},
		{name: "five fields, Sunday as 0 and 7", in: `{"name":"a","deployment":{"cron":"0 12 * * 0,7"},"request":{"hostname":"h"}}`, err: `did you mean "0 12 ? * 1,1 *"?`},
		{name: "five fields, both days", in: `{"name":"a","deployment":{"cron":"0 0 1 * 1"},"request":{"hostname":"h"}}`, err: "AWS cron cannot match both a day of the month and a day of the week"},
		{name: "four fields", in: `{"name":"a","deployment":{"cron":"0 0 * *"},"request":{"hostname":"h"}}`, err: `deployment.cron "0 0 * *" must be the six fields of an AWS cron expression`},
		{name: "cron not a string", in: `{"name":"a","deployment":{"cron":5},"request":{"hostname":"h"}}`, err: "deployment.cron must be a string"},
		{name: "enabled not a bool", in: `{"name":"a","deployment":{"enabled":"yes","cron":"0 0 * * ? *"},"request":{"hostname":"h"}}`, err: "deployment.enabled must be true or false"},
		{name: "headers not strings", in: `{"name":"a",` + rate + `,"request":{"hostname":"h","headers":{"x":1}}}`, err: "request.headers must be an object of strings"},
		{name: "deployment not an object", in: `{"name":"a","deployment":[],"request":{"hostname":"h"}}`, err: "deployment must be a JSON object"},
		{name: "no name", in: `{` + rate + `,"request":{"hostname":"h"}}`, err: "name is required"},
		{name: "bad name", in: `{"name":"a b",` + rate + `,"request":{"hostname":"h"}}`, err: `name "a b"`},
		{name: "no cron", in: `{"name":"a","deployment":{"enabled":true},"request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no deployment", in: `{"name":"a","request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no request", in: `{"name":"a",` + rate + `}`, err: "request is required"},
		{name: "no hostname", in: `{"name":"a",` + rate + `,"request":{"protocol":"https"}}`, err: "request.hostname is required"},
		{name: "hostname with scheme", in: `{"name":"a",` + rate + `,"request":{"hostname":"https://h"}}`, err: "bare host name"},
		{name: "unknown protocol", in: `{"name":"a",` + rate + `,"request":{"protocol":"ftp","hostname":"h"}}`, err: `request.protocol "ftp" is not http or https`},
		{name: "bad port", in: `{"name":"a",` + rate + `,"request":{"hostname":"h","port":70000}}`, err: "request.port 70000"},
		{name: "slack without webhook", in: `{"name":"a",` + rate + `,"request":{"hostname":"h"},"notification":{"slack":{"channel":"c"}}}`, err: "notification.slack.webhook is required"},
		{name: "not JSON", in: `{"name":`, err: "malformed Deployer timer"},
		{name: "trailing data", in: `{"name":"a"} {}`, err: "unexpected data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readDeployerTimer([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Transformer("string", func(b []byte) string { return string(b) })); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestAWSCronFromUnixParses checks that every suggestion for a five-field
// cron is a schedule callclock accepts, firing when the Unix cron would.
func TestAWSCronFromUnixParses(t *testing.T) {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // a Tuesday
	for _, tt := range []struct{ unix, want string }{
		{"0 0 * * *", "2026-12-01T00:00:00Z"},
		{"30 8 * * 1-5", "2026-12-01T08:30:00Z"}, // Mon-Fri: Tuesday
		{"0 12 * * 0", "2026-12-06T12:00:00Z"},   // Sunday
		{"0 12 * * 7", "2026-12-06T12:00:00Z"},   // Sunday too
		{"15 3 * * SAT", "2026-12-05T03:15:00Z"},
		{"0 6 15 * *", "2026-12-15T06:00:00Z"},
		{"0 0 * * */2", "2026-12-01T00:00:00Z"}, // Sun, Tue, Thu, Sat
	} {
		expr, ok := awsCronFromUnix(strings.Fields(tt.unix))
		if !ok {
			t.Errorf("%q: no suggestion", tt.unix)
			continue
		}
		s, err := ParseSchedule(ScheduleSpec{Expression: "cron(" + expr + ")"})
		if err != nil {
			t.Errorf("%q -> %q: %v", tt.unix, expr, err)
			continue
		}
		next, _ := s.Next(from.Add(-time.Second))
		if got := next.Format(time.RFC3339); got != tt.want {
			t.Errorf("%q -> %q: first %s, want %s", tt.unix, expr, got, tt.want)
		}
	}
}

func TestAPIPutDeployerFormat(t *testing.T) {
	api := NewAPI(newFakeTimerStore())
	api.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	api.Fire, api.FireQueueURL = &sqsSender{}, lcFireQueueURL // its first occurrence is within seconds
	put := func(id, body string) events.APIGatewayProxyResponse {
		return api.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "PUT", Path: "/periodic/" + id, Body: body})
	}
	ok := strings.Replace(strings.Replace(deployerExample, `"aws-secret(/callclock/qa/slack)"`, `"https://hooks.example.com/aws-secret(/callclock/qa/slack)"`, 1), "facilities-collect", "fc", 1)
	resp := put("fc", ok)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT Deployer document: %d %s", resp.StatusCode, resp.Body)
	}
	var doc map[string]any
	json.Unmarshal([]byte(resp.Body), &doc)
	h, _ := doc["http"].(map[string]any)
	if doc["schedule"] != "cron(*/1 * * * ? *)" || h["url"] != "https://blue.qa.example.com/facilities/management/collect" ||
		h["headers"].(map[string]any)["Authorization"] != "Bearer aws-secret(/callclock/qa/token)" || doc["notify"] == nil {
		t.Fatalf("document = %s", resp.Body)
	}
	for _, tt := range []struct{ id, body, want string }{
		{"other", ok, `name \"fc\" must equal the id in the path \"other\"`},
		{"fc", strings.Replace(ok, `"enabled":true`, `"enabled":false`, 1), "a disabled timer is not deployed"},
		{"fc", strings.Replace(ok, `"protocol":"HTTPS"`, `"protocol":"gopher"`, 1), `request.protocol \"gopher\"`},
		{"fc", `{"name":"fc","deployment":{"cron":"0 0 * * ? *"},"request":{"hostname":"h"},"extra":1}`, "Deployer timer fc: unknown field extra"},
		{"fc", `{"name":"fc","deployment":{"cron":"0 0 * * *"},"request":{"hostname":"h"}}`, `did you mean \"0 0 * * ? *\"?`},
		// The API validates the converted body as any other.
		{"facilities-collect", strings.Replace(deployerExample, `"aws-secret(/callclock/qa/slack)"`, `"ftp://hooks.example.com/x"`, 1),
			"notify.webhook must be an absolute http or https URL"},
		// A callclock document is still decoded strictly.
		{"fc", `{"timerCallbackData":1,"name":"fc"}`, `unknown field \"name\"`},
	} {
		resp := put(tt.id, tt.body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, tt.want) {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", tt.id, tt.body, resp.StatusCode, resp.Body, tt.want)
		}
	}
	// The Deployer's own example, unchanged: its webhook is a lone placeholder.
	if resp := put("facilities-collect", deployerExample); resp.StatusCode != 201 || !strings.Contains(resp.Body, `"webhook":"aws-secret(/callclock/qa/slack)"`) {
		t.Errorf("PUT of the Deployer's example: %d %s", resp.StatusCode, resp.Body)
	}
}
