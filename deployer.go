package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// This file reads the timer files of the Deployer (the deployment
// tool whose timers the Callculon Lambda fires) exactly as the
// Deployer writes them, and turns each into callclock's PUT body. A file in
// a product's repository looks like
//
//	{"name": "facilities-collect",
//	 "deployment": {"enabled": true, "cron": "0 9 * * ? *"},
//	 "request": {"protocol": "HTTPS", "hostname": "blue.qa.example.com", "port": 443,
//	             "path": "/facilities/management/collect", "method": "GET",
//	             "headers": {"Authorization": "Bearer aws-secret(/callclock/qa/token)"}},
//	 "notification": {"slack": {"webhook": "aws-secret(/callclock/qa/slack)",
//	                            "channel": "qa-alerts", "onFailure": true, "onSuccess": false}}}
//
// deployment.cron holds the six bare fields of an AWS cron expression: the
// Deployer wraps them itself (put-rule --schedule-expression "cron($cron)").
// At deploy time it merges deployment.product, version and id into every
// file. Callculon documents deployment.environment too.

// DeployerTimer is one Deployer timer file, converted.
type DeployerTimer struct {
	// ID is the file's name.
	ID string
	// Body is the callclock PUT body the file stands for (without group).
	Body []byte
	// Enabled is deployment.enabled: false means the timer is not deployed.
	Enabled bool
	// Product is deployment.product, the timer's group when none is given.
	Product string
	// Warnings name the fields callclock does not know, which it ignores.
	Warnings []string
}

// deployerFields are the fields of each object of a Deployer file that
// callclock reads; any other field is ignored with a warning.
var deployerFields = map[string][]string{
	"":                   {"name", "deployment", "request", "notification"},
	"deployment":         {"enabled", "cron", "product", "version", "id", "environment"},
	"request":            {"protocol", "hostname", "port", "path", "method", "headers", "body"},
	"notification":       {"slack"},
	"notification.slack": {"webhook", "channel", "onFailure", "onSuccess"},
}

// defaultPorts are the ports a URL leaves out.
var defaultPorts = map[string]int{"http": 80, "https": 443}

// isDeployerDoc reports whether raw is a JSON object in the Deployer
// format: one with a top-level "deployment" or "request".
func isDeployerDoc(raw []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return false
	}
	_, d := top["deployment"]
	_, r := top["request"]
	return d || r
}

// deployerObject is one object of a Deployer file: its known fields, by
// their exact names (the Deployer's JSON is case-sensitive).
type deployerObject struct {
	path   string
	fields map[string]json.RawMessage
}

// readDeployerObject reads the object at path of raw (nil or null is an
// empty object) and adds a warning to warn for each unknown field.
func readDeployerObject(raw json.RawMessage, path string, warn *[]string) (deployerObject, error) {
	o := deployerObject{path: path, fields: map[string]json.RawMessage{}}
	if len(raw) == 0 || string(raw) == "null" {
		return o, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return o, fmt.Errorf("%s must be a JSON object", o.name())
	}
	var unknown []string
	for k, v := range all {
		known := false
		for _, f := range deployerFields[path] {
			known = known || f == k
		}
		if known {
			o.fields[k] = v
		} else {
			unknown = append(unknown, o.child(k))
		}
	}
	sort.Strings(unknown)
	for _, u := range unknown {
		*warn = append(*warn, fmt.Sprintf("unknown field %s ignored", u))
	}
	return o, nil
}

func (o deployerObject) name() string {
	if o.path == "" {
		return "the timer"
	}
	return o.path
}

func (o deployerObject) child(k string) string {
	if o.path == "" {
		return k
	}
	return o.path + "." + k
}

// get decodes field k into v, leaving v as it is when k is absent or null.
func (o deployerObject) get(k string, v any) error {
	raw, ok := o.fields[k]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		want := "a string"
		switch v.(type) {
		case **bool:
			want = "true or false"
		case *map[string]string:
			want = "an object of strings"
		case *any:
			want = "a value"
		}
		return fmt.Errorf("%s must be %s", o.child(k), want)
	}
	return nil
}

// readDeployerTimer converts a Deployer timer file into callclock's PUT
// body: the id is its name, the schedule its deployment.cron, http its
// request, notify its Slack notification and deploymentInfo its
// deployment's product, version, id and environment.
func readDeployerTimer(raw []byte) (DeployerTimer, error) {
	var d DeployerTimer
	top, err := decodeDeployerDoc(raw)
	if err != nil {
		return d, err
	}
	w := &d.Warnings
	root, err := readDeployerObject(top, "", w)
	if err != nil {
		return d, fmt.Errorf("malformed Deployer timer: %w", err)
	}
	var name string
	if err := root.get("name", &name); err != nil {
		return d, err
	}
	if name == "" {
		return d, errors.New("Deployer timer: name is required")
	}
	if err := validateID(name); err != nil {
		return d, fmt.Errorf("Deployer timer: name %q: %s", name, ErrorMessage(err))
	}
	fail := func(err error) (DeployerTimer, error) {
		return DeployerTimer{}, fmt.Errorf("Deployer timer %s: %w", name, err)
	}
	out := deployerPut{}
	enabled, info, err := readDeployment(root, w, &out)
	if err != nil {
		return fail(err)
	}
	if out.HTTP, err = readDeployerRequest(root, w); err != nil {
		return fail(err)
	}
	if out.Notify, err = readDeployerNotification(root, w); err != nil {
		return fail(err)
	}
	if d.Body, err = marshalJSON(out); err != nil {
		return d, err
	}
	d.ID, d.Enabled, d.Product = name, enabled == nil || *enabled, info.Product
	return d, nil
}

// deployerPut is the PUT body a Deployer timer stands for.
type deployerPut struct {
	Schedule   string          `json:"schedule"`
	HTTP       *HTTPTarget     `json:"http"`
	Notify     *Notify         `json:"notify,omitempty"`
	Deployment *DeploymentInfo `json:"deploymentInfo,omitempty"`
}

// decodeDeployerDoc checks raw is one strict JSON value: a key given twice
// would be read as its last value, which a reviewer of the file may not
// see, and invalid UTF-8 would become U+FFFD.
func decodeDeployerDoc(raw []byte) (json.RawMessage, error) {
	if err := checkStrictJSON(raw, nil); err != nil {
		return nil, fmt.Errorf("malformed Deployer timer: %s", strings.TrimPrefix(ErrorMessage(err), "malformed JSON body: "))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var top json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("malformed Deployer timer: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed Deployer timer: unexpected data after the JSON object")
	}
	return top, nil
}

// getFields reads each named field of o into its pointer, in order.
func (o deployerObject) getFields(fields []deployerField) error {
	for _, f := range fields {
		if err := o.get(f.k, f.v); err != nil {
			return err
		}
	}
	return nil
}

// deployerField is a field of a Deployer object and where it goes.
type deployerField struct {
	k string
	v any
}

// readDeployment reads root's deployment object: whether the timer is
// enabled, its deployment info, and its schedule into out.
func readDeployment(root deployerObject, w *[]string, out *deployerPut) (*bool, DeploymentInfo, error) {
	var (
		enabled *bool
		cron    string
		info    DeploymentInfo
	)
	dep, err := readDeployerObject(root.fields["deployment"], "deployment", w)
	if err != nil {
		return nil, info, err
	}
	if err := dep.getFields([]deployerField{{"enabled", &enabled}, {"cron", &cron}, {"product", &info.Product},
		{"version", &info.Version}, {"id", &info.ID}, {"environment", &info.Environment}}); err != nil {
		return nil, info, err
	}
	if strings.TrimSpace(cron) == "" {
		return nil, info, errors.New("deployment.cron is required")
	}
	if out.Schedule, err = deployerSchedule(cron); err != nil {
		return nil, info, err
	}
	out.Deployment = info.orNil()
	return enabled, info, nil
}

// readDeployerRequest reads root's request object into the HTTP target.
func readDeployerRequest(root deployerObject, w *[]string) (*HTTPTarget, error) {
	if _, ok := root.fields["request"]; !ok {
		return nil, errors.New("request is required")
	}
	req, err := readDeployerObject(root.fields["request"], "request", w)
	if err != nil {
		return nil, err
	}
	var (
		proto, host, path, mth, body string
		port                         any
		headers                      map[string]string
	)
	if err := req.getFields([]deployerField{{"protocol", &proto}, {"hostname", &host}, {"port", &port}, {"path", &path},
		{"method", &mth}, {"headers", &headers}, {"body", &body}}); err != nil {
		return nil, err
	}
	u, err := deployerURL(proto, host, port, path)
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(mth)
	if method == "" {
		method = http.MethodGet
	}
	return &HTTPTarget{Method: method, URL: u, Headers: headers, Body: body}, nil
}

// readDeployerNotification reads root's notification.slack object, if
// any, into the timer's notification.
func readDeployerNotification(root deployerObject, w *[]string) (*Notify, error) {
	notification, err := readDeployerObject(root.fields["notification"], "notification", w)
	if err != nil {
		return nil, err
	}
	raw, ok := notification.fields["slack"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	slack, err := readDeployerObject(raw, "notification.slack", w)
	if err != nil {
		return nil, err
	}
	n := &Notify{}
	if err := slack.getFields([]deployerField{{"webhook", &n.Webhook}, {"channel", &n.Channel},
		{"onFailure", &n.OnFailure}, {"onSuccess", &n.OnSuccess}}); err != nil {
		return nil, err
	}
	if n.Webhook == "" {
		return nil, errors.New("notification.slack.webhook is required")
	}
	return n, nil
}

// deployerURL builds the target URL from the request's parts.
func deployerURL(protocol, host string, port any, path string) (string, error) {
	proto := strings.ToLower(protocol)
	if proto == "" {
		proto = "https"
	}
	defPort, ok := defaultPorts[proto]
	if !ok {
		return "", fmt.Errorf("request.protocol %q is not http or https", protocol)
	}
	if host == "" {
		return "", errors.New("request.hostname is required")
	}
	if strings.ContainsAny(host, "/:?#@ \t\r\n") {
		return "", fmt.Errorf("request.hostname %q must be a bare host name (no scheme, port or path)", host)
	}
	n := defPort
	switch p := port.(type) {
	case nil:
	case float64:
		if n = int(p); float64(n) != p {
			n = -1
		}
	case string:
		var err error
		if n, err = strconv.Atoi(p); err != nil {
			n = -1
		}
	default:
		n = -1
	}
	if n < 1 || n > 65535 {
		return "", fmt.Errorf("request.port %v is not a port number (1-65535)", port)
	}
	u := proto + "://" + host
	if n != defPort {
		u += ":" + strconv.Itoa(n)
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		u += "/"
	}
	return u + path, nil
}

// deployerSchedule reads deployment.cron as the Deployer writes it: the
// six bare fields of an AWS cron expression, which it wraps in cron(...).
// An expression already written as cron(...), rate(...) or at(...) is
// kept. A five-field Unix cron is refused with the AWS expression it
// probably meant, because reading it as AWS fields would shift every field.
func deployerSchedule(cron string) (string, error) {
	c := strings.TrimSpace(cron)
	for _, p := range []string{"cron(", "rate(", "at("} {
		if strings.HasPrefix(c, p) {
			return c, nil
		}
	}
	fields := strings.Fields(c)
	switch len(fields) {
	case 6:
		return "cron(" + strings.Join(fields, " ") + ")", nil
	case 5:
		msg := fmt.Sprintf("deployment.cron %q has five fields, as a Unix cron; AWS cron has six "+
			"(minutes hours day-of-month month day-of-week year, with ? in one of the day fields)", cron)
		dom, dow := fields[2], fields[4]
		if aws, ok := awsCronFromUnix(fields); ok {
			msg += fmt.Sprintf(": did you mean %q?", aws)
		} else if dom != "*" && dom != "?" && dow != "*" && dow != "?" {
			msg += ": AWS cron cannot match both a day of the month and a day of the week; give one and ? for the other"
		}
		return "", errors.New(msg)
	}
	return "", fmt.Errorf("deployment.cron %q must be the six fields of an AWS cron expression "+
		"(minutes hours day-of-month month day-of-week year), e.g. \"0 9 * * ? *\"", cron)
}

// awsCronFromUnix translates a five-field Unix cron into the six fields
// of AWS cron, when AWS can say the same thing: a year field is added, the
// unused day field becomes ?, and Unix days of the week (0-7, Sunday 0 or
// 7) become AWS's 1-7 (Sunday 1). The result parses as a schedule.
func awsCronFromUnix(f []string) (string, bool) {
	minute, hour, dom, month, dow := f[0], f[1], f[2], f[3], f[4]
	switch {
	case dow == "*" || dow == "?":
		dow = "?"
	case dom == "*" || dom == "?":
		dom = "?"
		var ok bool
		if dow, ok = awsDaysOfWeek(dow); !ok {
			return "", false
		}
	default:
		return "", false // Unix fires on either day field; AWS cannot
	}
	expr := strings.Join([]string{minute, hour, dom, month, dow, "*"}, " ")
	if _, err := ParseSchedule(ScheduleSpec{Expression: "cron(" + expr + ")"}); err != nil {
		return "", false
	}
	return expr, true
}

// awsDaysOfWeek shifts the numbers of a Unix day-of-week field (lists,
// ranges and steps of 0-7) to AWS's 1-7; names stay as they are.
func awsDaysOfWeek(field string) (string, bool) {
	shift := func(s string) (string, bool) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return s, s != "" && strings.IndexFunc(s, func(r rune) bool { return r < 'A' || r > 'z' }) < 0
		}
		if n < 0 || n > 7 {
			return "", false
		}
		return strconv.Itoa(n%7 + 1), true
	}
	parts := strings.Split(field, ",")
	for i, p := range parts {
		base, step, hasStep := strings.Cut(p, "/")
		lo, hi, isRange := strings.Cut(base, "-")
		var ok bool
		switch {
		case base == "*":
		case isRange:
			if lo, ok = shift(lo); !ok {
				return "", false
			}
			if hi, ok = shift(hi); !ok {
				return "", false
			}
			base = lo + "-" + hi
		default:
			if base, ok = shift(base); !ok {
				return "", false
			}
		}
		if hasStep {
			base += "/" + step
		}
		parts[i] = base
	}
	return strings.Join(parts, ","), true
}
