package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// `bootstrap console`: a web console on loopback, served by the binary
// itself. The page calls this server, which forwards each call to the API
// signed with the operator's credentials (as `kubectl proxy` does for the
// Kubernetes dashboard), and answers a few aggregates of its own
// (console_aggregate.go). Since it holds those credentials, it is guarded
// like a local admin endpoint: loopback only, its own Host names only, and
// no state-changing request from another site.

//go:embed console
var consoleFiles embed.FS

// Console serves the console's page, its API proxy and its aggregates.
type Console struct {
	API apiCaller
	// Endpoint is the API's URL, for the messages that name it.
	Endpoint string
	// Hosts are the Host headers the console answers: its own address,
	// so that a DNS name rebound to 127.0.0.1 gets nothing.
	Hosts map[string]bool
	// Now is the clock the failures panel's "recently" is measured on.
	Now func() time.Time
}

// consoleHeader is the header the page sets on every call; a state-changing
// call without it is refused. A cross-site page cannot set it: a custom
// header needs a CORS preflight, which the console never grants.
const consoleHeader = "X-Callclock-Console"

// maxConsoleBody bounds a forwarded body (the API's own limit is lower).
const maxConsoleBody = 1 << 20

// consoleHosts are the Host headers a console listening on addr answers:
// addr itself and localhost with its port.
func consoleHosts(addr net.Addr) map[string]bool {
	_, port, _ := net.SplitHostPort(addr.String())
	return map[string]bool{addr.String(): true, net.JoinHostPort("localhost", port): true}
}

// ServeHTTP checks the Host, then serves /api/ (the proxy), /console/
// (the aggregates) or the page's files.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if !c.Hosts[r.Host] {
		writeConsoleError(w, Errorf(EFORBIDDEN, "the console answers only to its own address, not to Host %q", r.Host), "")
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		if c.guard(w, r) {
			c.forward(w, r)
		}
	case strings.HasPrefix(r.URL.Path, "/console/"):
		if c.guard(w, r) {
			c.aggregate(w, r)
		}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		assets, _ := fs.Sub(consoleFiles, "console")
		http.FileServerFS(assets).ServeHTTP(w, r)
	default:
		writeConsoleError(w, methodNotAllowed(r.Method, r.URL.Path, "GET"), "")
	}
}

// guard refuses a data request made from another site: one whose
// Sec-Fetch-Site or Origin names another site, and a state-changing one
// without the console's header. It reports whether the request may go on.
func (c *Console) guard(w http.ResponseWriter, r *http.Request) bool {
	var why string
	site := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	switch {
	case site != "" && site != "same-origin" && site != "none":
		why = "a request from another site (Sec-Fetch-Site: " + site + ")"
	case origin != "" && !c.sameOrigin(origin):
		why = "a request from another origin (" + origin + ")"
	case r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(consoleHeader) != "1":
		why = "a " + r.Method + " without the console's " + consoleHeader + " header"
	default:
		return true
	}
	writeConsoleError(w, Errorf(EFORBIDDEN, "the console refuses %s", why), "")
	return false
}

// sameOrigin reports whether origin is the console's own.
func (c *Console) sameOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == "http" && c.Hosts[u.Host] && u.Path == ""
}

// forward sends /api/PATH?QUERY to the API's PATH?QUERY, signed, and
// answers with the API's JSON, or its JSON error.
func (c *Console) forward(w http.ResponseWriter, r *http.Request) {
	path, err := apiPath(r.URL)
	if err != nil {
		writeConsoleError(w, err, "")
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		writeConsoleError(w, methodNotAllowed(r.Method, r.URL.Path, "DELETE, GET, POST, PUT"), "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConsoleBody))
	if err != nil {
		writeConsoleError(w, Errorf(ETOOLARGE, "the body is over %d bytes", maxConsoleBody), "")
		return
	}
	if len(body) == 0 {
		body = nil
	}
	b, err := c.API.do(r.Context(), r.Method, path, r.URL.Query(), body)
	if err != nil {
		c.writeAPIError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// apiPath is the API path /api/PATH forwards to, as the page escaped it
// (a timer ID may hold ':' or '%'): only the API's three trees,
// /periodic, /groups and /limits, and no "." or ".." segment.
func apiPath(u *url.URL) (string, error) {
	p := strings.TrimPrefix(u.EscapedPath(), "/api")
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if segs[0] != "periodic" && segs[0] != "groups" && segs[0] != "limits" {
		return "", Errorf(ENOTFOUND, "the console forwards /api/periodic, /api/groups and /api/limits only, not %s", u.Path)
	}
	for _, s := range segs[1:] {
		d, err := url.PathUnescape(s)
		if err != nil || d == "" || d == "." || d == ".." || strings.Contains(d, "/") {
			return "", Errorf(EINVALID, "the path %s is not an API path", u.Path)
		}
	}
	return p, nil
}

// writeAPIError answers with err from the API client: the API's own error
// as it sent it (its status, code and message), or, when the API could
// not be reached, a 502 that says so; with what to do, when known.
func (c *Console) writeAPIError(w http.ResponseWriter, err error) {
	hint := errorHint(err, c.Endpoint)
	var ce *Error
	if errors.As(err, &ce) { // the console's own, about the API's answer
		writeConsoleError(w, err, hint)
		return
	}
	var ae *timersAPIError
	if errors.As(err, &ae) {
		code := ae.Code
		if code == "" {
			code = statusCodes[ae.Status]
		}
		writeConsoleJSON(w, ae.Status, consoleError{Error: apiErrorBody{Code: code, Message: ae.Message}, Hint: hint})
		return
	}
	msg := fmt.Sprintf("the API at %s could not be reached: %v", c.Endpoint, err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) && isLocalEndpoint(c.Endpoint):
		msg = fmt.Sprintf("the API at %s does not answer: start the local stack with make run", c.Endpoint)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("the API at %s does not answer: check --endpoint or CALLCLOCK_ENDPOINT", c.Endpoint)
	}
	writeConsoleJSON(w, http.StatusBadGateway, consoleError{Error: apiErrorBody{Code: EBADGATEWAY, Message: msg}})
}

// statusCodes name the code of an error body that has none (API Gateway's
// own 403, a 5xx of a failed integration).
var statusCodes = map[int]string{
	http.StatusBadRequest: EINVALID, http.StatusForbidden: EFORBIDDEN, http.StatusNotFound: ENOTFOUND,
	http.StatusRequestEntityTooLarge: ETOOLARGE, http.StatusBadGateway: EBADGATEWAY,
	http.StatusServiceUnavailable: EUNAVAILABLE, http.StatusInternalServerError: EINTERNAL,
}

// apiErrorBody is the API's {"code", "message"} (errors.go).
type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// consoleError is the API's error body, with what to do about it.
type consoleError struct {
	Error apiErrorBody `json:"error"`
	Hint  string       `json:"hint,omitempty"`
}

// writeConsoleError answers with one of the console's own errors, in the
// API's error shape.
func writeConsoleError(w http.ResponseWriter, err error, hint string) {
	status := errorStatus(ErrorCode(err))
	if me := (*methodError)(nil); errors.As(err, &me) {
		w.Header().Set("Allow", me.allow)
	}
	writeConsoleJSON(w, status, consoleError{Error: apiErrorBody{Code: ErrorCode(err), Message: ErrorMessage(err)}, Hint: hint})
}

// writeConsoleJSON answers with v as JSON.
func writeConsoleJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil { // only the console's own types get here
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// checkLoopback refuses a listening address that is not on loopback: the
// console signs with the operator's credentials for whoever reaches it.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Errorf(EINVALID, "--addr %q is not HOST:PORT, e.g. 127.0.0.1:8081", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return Errorf(EINVALID, "--addr %q is not a loopback address (127.0.0.1, ::1 or localhost): the console signs every call with your AWS credentials, so it listens on this machine only", addr)
	}
	return nil
}

// runConsole is `bootstrap console [--addr A] [--endpoint URL]`: it serves
// the console until ctx ends (Ctrl-C).
func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("console", "console [--addr 127.0.0.1:8081] [--endpoint URL]", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "the loopback `address` to serve the console on")
	endpoint := fs.String("endpoint", "", "the API's `URL` (default $CALLCLOCK_ENDPOINT, else the local stack's "+defaultEndpoint+")")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	cmd := &timerCmd{name: "console", endpoint: endpoint, stderr: stderr, lookup: os.LookupEnv}
	if code := cmd.resolveEndpoint(); code >= 0 {
		return code
	}
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "bootstrap console: %s\n", consoleMessage(err))
		return code
	}
	if err := checkLoopback(*addr); err != nil {
		return fail(exitUsage, err)
	}
	api, err := newAPIClient(ctx, *endpoint)
	if err != nil {
		return fail(exitFailure, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(exitFailure, err)
	}
	c := &Console{API: api, Endpoint: api.Endpoint, Hosts: consoleHosts(ln.Addr()), Now: time.Now}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "callclock console on http://%s (API %s)\n", ln.Addr(), api.Endpoint)
	select {
	case err = <-done:
		return fail(exitFailure, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fail(exitFailure, err)
	}
	return exitOK
}

// consoleMessage is err for the terminal: an *Error's message, any other
// error as it says.
func consoleMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
