package main

import (
	"bufio"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// specRoute is one operation: an HTTP method on a path template.
type specRoute struct {
	Method, Path string
}

// openAPISpec is what the line-based reader takes from openapi.yaml: each
// operation with the statuses it lists, and the Error schema's codes.
type openAPISpec struct {
	ops        map[specRoute][]int
	errorCodes []string
}

// routes returns the spec's operations, sorted.
func (s *openAPISpec) routes() []specRoute {
	var rs []specRoute
	for r := range s.ops {
		rs = append(rs, r)
	}
	sortRoutes(rs)
	return rs
}

// methods returns the methods the spec lists for path, as the router's
// Allow header writes them: sorted, comma-separated.
func (s *openAPISpec) methods(path string) string {
	var ms []string
	for r := range s.ops {
		if r.Path == path {
			ms = append(ms, r.Method)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// sortRoutes sorts routes by path, then method, so that lists compare.
func sortRoutes(rs []specRoute) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Path != rs[j].Path {
			return rs[i].Path < rs[j].Path
		}
		return rs[i].Method < rs[j].Method
	})
}

// specIndent is the number of leading spaces of line.
func specIndent(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }

// readOpenAPISpec reads openapi.yaml line by line, relying on its layout
// rather than on a YAML library: under "paths:", a two-space line ending in
// ':' is a path, a four-space get:/put:/post:/delete: (...) an operation,
// and an eight-space "NNN": under its six-space responses: a status. The
// Error schema's code enum is a flow list, enum: [a, b].
func readOpenAPISpec(t *testing.T, name string) *openAPISpec {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &specParser{t: t, name: name, spec: &openAPISpec{ops: map[specRoute][]int{}}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		p.line(n, specIndent(line), text)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(p.spec.ops) == 0 {
		t.Fatalf("%s: no operations found under paths:", name)
	}
	for r, codes := range p.spec.ops {
		if len(codes) == 0 {
			t.Errorf("%s: %s %s lists no responses", name, r.Method, r.Path)
		}
	}
	return p.spec
}

// specMethods are the keys of a path item that are operations.
var specMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true,
	"patch": true, "head": true, "options": true, "trace": true}

// specParser is readOpenAPISpec's place in openapi.yaml.
type specParser struct {
	t    *testing.T
	name string
	spec *openAPISpec

	section     string // the current top-level key
	schema      string // the current schema under components.schemas
	inSchemas   bool
	path        string
	op          *specRoute
	inResponses bool
}

// line reads line n, text indented by indent.
func (p *specParser) line(n, indent int, text string) {
	switch {
	case indent == 0:
		p.section, p.path, p.op, p.inResponses, p.inSchemas, p.schema = strings.TrimSuffix(text, ":"), "", nil, false, false, ""
	case p.section == "paths":
		p.pathsLine(n, indent, text)
	case p.section == "components":
		p.componentsLine(n, indent, text)
	}
}

// pathsLine reads a line under paths: a path, an operation, its
// responses and their statuses.
func (p *specParser) pathsLine(n, indent int, text string) {
	switch {
	case indent == 2 && strings.HasPrefix(text, "/") && strings.HasSuffix(text, ":"):
		p.path, p.op, p.inResponses = strings.TrimSuffix(text, ":"), nil, false
	case indent == 4 && p.path != "":
		p.op, p.inResponses = nil, false
		if m := strings.TrimSuffix(text, ":"); specMethods[m] && strings.HasSuffix(text, ":") {
			p.op = &specRoute{Method: strings.ToUpper(m), Path: p.path}
			if _, dup := p.spec.ops[*p.op]; dup {
				p.t.Errorf("%s:%d: %s %s is listed twice", p.name, n, p.op.Method, p.op.Path)
			}
			p.spec.ops[*p.op] = nil
		}
	case indent == 6 && p.op != nil:
		p.inResponses = text == "responses:"
	case indent == 8 && p.inResponses:
		code, err := strconv.Atoi(strings.Trim(strings.TrimSuffix(text, ":"), `"'`))
		if err != nil || !strings.HasSuffix(text, ":") {
			p.t.Errorf("%s:%d: %q is not a status code under responses", p.name, n, text)
			return
		}
		p.spec.ops[*p.op] = append(p.spec.ops[*p.op], code)
	}
}

// componentsLine reads a line under components: the Error schema's code
// enum.
func (p *specParser) componentsLine(n, indent int, text string) {
	switch {
	case indent == 2:
		p.inSchemas, p.schema = text == "schemas:", ""
	case indent == 4 && p.inSchemas:
		p.schema = strings.TrimSuffix(text, ":")
	case p.schema == "Error" && strings.HasPrefix(text, "enum:"):
		list := strings.TrimSpace(strings.TrimPrefix(text, "enum:"))
		if !strings.HasPrefix(list, "[") || !strings.HasSuffix(list, "]") {
			p.t.Fatalf("%s:%d: the Error schema's enum must be a flow list [a, b], got %q", p.name, n, list)
		}
		for _, c := range strings.Split(strings.Trim(list, "[]"), ",") {
			p.spec.errorCodes = append(p.spec.errorCodes, strings.Trim(strings.TrimSpace(c), `"'`))
		}
	}
}

// errorCodesOf returns the values of the E* string constants of a Go file.
func errorCodesOf(t *testing.T, name string) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, s := range gen.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if len(id.Name) < 2 || id.Name[0] != 'E' || strings.ToUpper(id.Name) != id.Name || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, v)
			}
		}
	}
	return codes
}

// specFireSender accepts every manual fire, so POST .../fire can succeed.
var specFireSender = sendFunc(func(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{MessageId: aws.String("spec-fire")}, nil
})

// TestOpenAPIMatchesRouter keeps openapi.yaml and the router in step: the
// spec's operations are exactly the router's routes, each answers with a
// status the spec lists for it, the other methods of a path get a 405 whose
// Allow header is the spec's methods, and the Error schema names every
// error code of errors.go.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	spec := readOpenAPISpec(t, "openapi.yaml")

	// The routes API.route serves. A route added there must be added here
	// and to openapi.yaml; a spec entry without a route fails too.
	routes := []specRoute{
		{http.MethodGet, "/periodic"},
		{http.MethodPut, "/periodic/{id}"},
		{http.MethodGet, "/periodic/{id}"},
		{http.MethodDelete, "/periodic/{id}"},
		{http.MethodPost, "/periodic/{id}/pause"},
		{http.MethodPost, "/periodic/{id}/resume"},
		{http.MethodPost, "/periodic/{id}/fire"},
		{http.MethodGet, "/periodic/{id}/history"},
		{http.MethodGet, "/periodic/{id}/upcoming"},
		{http.MethodPost, "/groups/{group}/pause"},
		{http.MethodPost, "/groups/{group}/resume"},
		{http.MethodGet, "/limits"},
		{http.MethodPut, "/limits/{key}"},
		{http.MethodGet, "/limits/{key}"},
		{http.MethodDelete, "/limits/{key}"},
	}
	sortRoutes(routes)
	if diff := cmp.Diff(routes, spec.routes()); diff != "" {
		t.Errorf("router routes (-) and openapi.yaml operations (+) differ:\n%s", diff)
	}

	codes := errorCodesOf(t, "errors.go")
	if len(codes) == 0 {
		t.Fatal("errors.go: no E* error codes found")
	}
	slices.Sort(codes)
	specCodes := slices.Clone(spec.errorCodes)
	slices.Sort(specCodes)
	if diff := cmp.Diff(codes, specCodes); diff != "" {
		t.Errorf("errors.go codes (-) and the Error schema's enum (+) differ:\n%s", diff)
	}

	for _, r := range spec.routes() {
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			t.Parallel()
			checkSpecOperation(t, r, spec.ops[r])
		})
	}
	checkSpecOtherMethods(t, spec)
}

// specNow is the clock of the spec tests' API.
var specNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// specParams fills a spec path's parameters with timer t1, group qa and
// limit lim1.
var specParams = strings.NewReplacer("{id}", "t1", "{group}", "qa", "{key}", "lim1")

// newSpecAPI returns an API whose store holds timer t1 of group qa,
// unless empty, and whose manual fires succeed.
func newSpecAPI(t *testing.T, empty bool) *testAPI {
	a := newTestAPI(specNow, 1)
	a.Fire, a.FireQueueURL = specFireSender, "https://sqs.example.com/123456789012/callclock-fire"
	if !empty {
		resp := a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut,
			Path: "/periodic/t1", Body: `{"timerCallbackData":1,"group":"qa"}`})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT /periodic/t1: status %d, want 201; body %s", resp.StatusCode, resp.Body)
		}
		resp = a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut,
			Path: "/limits/lim1", Body: `{"perSecond":2}`})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT /limits/lim1: status %d, want 201; body %s", resp.StatusCode, resp.Body)
		}
	}
	return a
}

// specSend answers one request and checks the status is one the spec
// lists for r (statuses), and not a routing failure.
func specSend(t *testing.T, a *testAPI, r specRoute, statuses []int, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp := a.Handle(t.Context(), req)
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal([]byte(resp.Body), &e)
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("%s %s: body is not JSON: %q", req.HTTPMethod, req.Path, resp.Body)
	}
	if !slices.Contains(statuses, resp.StatusCode) {
		t.Errorf("%s %s: status %d is not among the spec's %v for %s %s; body %s",
			req.HTTPMethod, req.Path, resp.StatusCode, statuses, r.Method, r.Path, resp.Body)
	}
	if resp.StatusCode == http.StatusMethodNotAllowed ||
		resp.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Error.Message, "no such resource") {
		t.Errorf("%s %s: the router has no such route: %d %s", req.HTTPMethod, req.Path, resp.StatusCode, resp.Body)
	}
	return resp
}

// checkSpecOperation sends operation r a valid request, one with a bad
// parameter, one without its timer and one with too large a body, each of
// which must answer a status the spec lists (statuses).
func checkSpecOperation(t *testing.T, r specRoute, statuses []int) {
	isPut := r.Method == http.MethodPut
	req := events.APIGatewayProxyRequest{HTTPMethod: r.Method, Path: specParams.Replace(r.Path)}
	switch {
	case isPut && strings.HasPrefix(r.Path, "/limits/"):
		req.Body = `{"perSecond":2}`
	case isPut:
		req.Body = `{"timerCallbackData":1}`
	case strings.HasSuffix(r.Path, "/pause"):
		req.Body = `{"reason":"openapi_test"}`
	}

	// A valid request succeeds.
	if resp := specSend(t, newSpecAPI(t, isPut), r, statuses, req); resp.StatusCode >= 300 {
		t.Errorf("%s %s: status %d, want success; body %s", req.HTTPMethod, req.Path, resp.StatusCode, resp.Body)
	}

	// A bad parameter is a 400 the spec lists.
	bad := req
	switch {
	case strings.Contains(r.Path, "{id}"):
		bad.Path = strings.NewReplacer("{id}", "no%20such", "{group}", "qa").Replace(r.Path)
	case strings.Contains(r.Path, "{group}"):
		bad.Path = strings.NewReplacer("{group}", "no%20such").Replace(r.Path)
	case strings.Contains(r.Path, "{key}"):
		bad.Path = strings.NewReplacer("{key}", "no%20such").Replace(r.Path)
	default:
		bad.QueryStringParameters = map[string]string{"limit": "0"}
	}
	if resp := specSend(t, newSpecAPI(t, false), r, statuses, bad); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("%s %s: status %d, want 400; body %s", bad.HTTPMethod, bad.Path, resp.StatusCode, resp.Body)
	}

	// A missing timer (or an empty group) answers a status the spec
	// lists, 404 where one is listed.
	resp := specSend(t, newSpecAPI(t, true), r, statuses, req)
	if slices.Contains(statuses, http.StatusNotFound) && resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s %s without the timer: status %d, want 404; body %s", req.HTTPMethod, req.Path, resp.StatusCode, resp.Body)
	}

	// A body over MaxBodyBytes is a 413 exactly where the spec says.
	big := `{"reason":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	large := req
	large.Body = big
	resp = specSend(t, newSpecAPI(t, false), r, statuses, large)
	if got, want := resp.StatusCode == http.StatusRequestEntityTooLarge, slices.Contains(statuses, http.StatusRequestEntityTooLarge); got != want {
		t.Errorf("%s %s with a %d-byte body: status %d; the spec lists 413: %t", req.HTTPMethod, req.Path, len(big), resp.StatusCode, want)
	}
}

// checkSpecOtherMethods checks that every other method on a spec path is
// a 405 whose Allow header is the spec's methods for that path, and that
// the spec lists that 405.
func checkSpecOtherMethods(t *testing.T, spec *openAPISpec) {
	seen := map[string]bool{}
	for _, r := range spec.routes() {
		if seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		allow := spec.methods(r.Path)
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions} {
			if slices.Contains(strings.Split(allow, ", "), m) {
				continue
			}
			a := newSpecAPI(t, false)
			resp := a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: m, Path: specParams.Replace(r.Path)})
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Headers["Allow"] != allow {
				t.Errorf("%s %s: status %d, Allow %q; want 405 and Allow %q (the spec's methods)",
					m, r.Path, resp.StatusCode, resp.Headers["Allow"], allow)
			}
		}
		for _, m := range strings.Split(allow, ", ") {
			if !slices.Contains(spec.ops[specRoute{m, r.Path}], http.StatusMethodNotAllowed) {
				t.Errorf("%s %s: the spec does not list the 405 (with Allow) the path answers to other methods", m, r.Path)
			}
		}
	}
}
