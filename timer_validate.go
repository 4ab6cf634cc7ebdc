package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The timer's rules: newTimer turns a PUT body into a Timer, checking
// every field, with no I/O, so that the API and the command line (timer
// files) apply the same rules.

// Validate checks the webhook: an http or https URL, placeholders allowed.
func (n *Notify) Validate(prefix string) error {
	if err := checkSecrets("notify.webhook", n.Webhook, prefix); err != nil {
		return err
	}
	// The Deployer keeps the whole webhook URL in Parameter Store: a lone
	// placeholder is checked when it is resolved, at firing.
	w := strings.TrimSpace(n.Webhook)
	if lone := w != "" && secretPattern.FindString(w) == w; !lone && !isHTTPURL(n.Webhook) {
		return Errorf(EINVALID, "notify.webhook must be an absolute http or https URL (a port, if given, from 1 to 65535)")
	}
	if utf8.RuneCountInString(n.Channel) > 80 || strings.IndexFunc(n.Channel, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return Errorf(EINVALID, "notify.channel must be at most 80 printable characters without spaces, such as ops-alerts")
	}
	return nil
}

// Validate checks that each field is short, printable text.
func (d *DeploymentInfo) Validate() error {
	for _, f := range []struct{ name, v string }{{"product", d.Product}, {"version", d.Version}, {"id", d.ID}, {"environment", d.Environment}} {
		if utf8.RuneCountInString(f.v) > MaxDeploymentField || strings.IndexFunc(f.v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return Errorf(EINVALID, "deploymentInfo.%s must be at most %d printable characters", f.name, MaxDeploymentField)
		}
	}
	return nil
}

// isHTTPURL reports whether s, with its placeholders standing for a
// value, is an absolute http or https URL with a host and, if it names a
// port, one from 1 to 65535: url.Parse takes any digits as a port, and a
// URL that can never be dialled would be retried to the end of its policy.
func isHTTPURL(s string) bool {
	u, err := url.Parse(contextPattern.ReplaceAllString(secretPattern.ReplaceAllString(s, "secret"), "context"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n >= 1 && n <= 65535
	}
	return true
}

// validHeaderValue reports whether v is a header value net/http will
// send: no control character but HTAB (RFC 9110's field-value). PUT checks
// the value as written (a placeholder holds none); the invoker checks it
// again once secrets are resolved, so that its error names the header,
// never the value.
func validHeaderValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f })
}

// groupPattern is what a group name may be.
var groupPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validateGroup reports whether g is an acceptable group name.
func validateGroup(g string) error {
	if !groupPattern.MatchString(g) || isDotSegment(g) { // as ids: /groups/../pause cannot be addressed
		return Errorf(EINVALID, "group must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not . or ..")
	}
	return nil
}

// idPattern is the set of ids the API accepts: safe in a URL path, a
// DynamoDB key and a log line without escaping.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// validateID reports whether id is an acceptable timer id. "." and ".."
// are not: clients and proxies that normalise paths (RFC 3986 dot
// segments) would send /periodic/.. as /, so such a timer could not be
// addressed.
func validateID(id string) error {
	if !idPattern.MatchString(id) || isDotSegment(id) {
		return Errorf(EINVALID, "id must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-', and not . or ..")
	}
	return nil
}

// isDotSegment reports whether s is a path's "." or ".." segment.
func isDotSegment(s string) bool { return s == "." || s == ".." }

// secretNamePattern is what SSM Parameter Store accepts as a full name.
var secretNamePattern = regexp.MustCompile(`^/[A-Za-z0-9_.\-/]+$`)

// checkSecrets validates every placeholder in s: a well-formed name under
// prefix, because the invoker's IAM policy allows nothing else. A stray
// "aws-secret(" that is not a placeholder is an error too, since it would
// otherwise be sent to the target literally.
func checkSecrets(field, s, prefix string) error {
	for _, name := range secretNames(s) {
		if !secretNamePattern.MatchString(name) || strings.Contains(name, "//") || slices.ContainsFunc(strings.Split(name, "/"), isDotSegment) {
			return Errorf(EINVALID, "%s: aws-secret(%s) is not a valid parameter name", field, name)
		}
		if !strings.HasPrefix(name, prefix) {
			return Errorf(EINVALID, "%s: aws-secret(%s) is outside the allowed prefix %s", field, name, prefix)
		}
	}
	if strings.Contains(secretPattern.ReplaceAllString(s, ""), "aws-secret(") {
		return Errorf(EINVALID, "%s: malformed aws-secret(...) placeholder", field)
	}
	return nil
}

// tokenPattern is an HTTP token (RFC 9110), for methods and header names.
var tokenPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate checks and normalises an HTTP target. Placeholders are checked
// against prefix and stand in for a value while the URL is parsed.
func (h *HTTPTarget) Validate(prefix string) error {
	if h.Method == "" {
		h.Method = http.MethodGet
	}
	if !tokenPattern.MatchString(h.Method) {
		return Errorf(EINVALID, "http.method %q is not a valid HTTP method", h.Method)
	}
	h.Method = strings.ToUpper(h.Method)
	if err := checkSecrets("http.url", h.URL, prefix); err != nil {
		return err
	}
	if !isHTTPURL(h.URL) {
		return Errorf(EINVALID, "http.url must be an absolute http or https URL (a port, if given, from 1 to 65535)")
	}
	if h.TimeoutSeconds < 0 || h.TimeoutSeconds > MaxTimeoutSeconds {
		return Errorf(EINVALID, "http.timeoutSeconds must be from 1 to %d", MaxTimeoutSeconds)
	}
	for _, c := range h.SuccessCodes {
		if c < 100 || c > 599 {
			return Errorf(EINVALID, "http.successCodes: %d is not an HTTP status", c)
		}
	}
	if err := h.validateHeaders(prefix); err != nil {
		return err
	}
	if h.LimitKey != "" {
		if err := validateLimitKey("http.limitKey", h.LimitKey); err != nil {
			return err
		}
	}
	return h.validatePlaceholders(prefix)
}

// validateHeaders checks the target's header names and values, in name
// order, so that the error for a target with several bad headers is the
// same at every PUT.
func (h *HTTPTarget) validateHeaders(prefix string) error {
	byLower := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		value := h.Headers[name]
		if !tokenPattern.MatchString(name) {
			return Errorf(EINVALID, "http.headers: %q is not a valid header name", name)
		}
		if !validHeaderValue(value) {
			return Errorf(EINVALID, "http.headers.%s: value must not contain control characters (tab excepted)", name)
		}
		if err := checkSecrets("http.headers."+name, value, prefix); err != nil {
			return err
		}
		if err := checkContext("http.headers."+name, value); err != nil {
			return err
		}
		// Header names are case-insensitive on the wire: of two that
		// differ only in case, one would silently replace the other.
		lower := strings.ToLower(name)
		if other, ok := byLower[lower]; ok {
			return Errorf(EINVALID, "http.headers: %q and %q are the same header (header names are case-insensitive); give it once", other, name)
		}
		byLower[lower] = name
	}
	return nil
}

// validatePlaceholders checks the URL's context placeholders (after the
// URL itself, so that its error comes first), the body's placeholders of
// both kinds, and the signing secrets.
func (h *HTTPTarget) validatePlaceholders(prefix string) error {
	if err := checkContextURL("http.url", h.URL); err != nil {
		return err
	}
	if err := checkSecrets("http.body", h.Body, prefix); err != nil {
		return err
	}
	if err := checkContext("http.body", h.Body); err != nil {
		return err
	}
	if h.Signing == nil {
		return nil
	}
	if err := checkSignedHost(h.URL); err != nil {
		return err
	}
	return h.Signing.Validate(prefix)
}

// putRequest is a timer's definition as a client writes it: the body of
// PUT /periodic/{id}, and of a callclock timer file.
type putRequest struct {
	TimerCallbackData     json.RawMessage `json:"timerCallbackData"`
	MinuteOfHour          *int            `json:"minuteOfHour"`
	Schedule              string          `json:"schedule"`
	Timezone              string          `json:"timezone"`
	StartAt               *time.Time      `json:"startAt"`
	EndAt                 *time.Time      `json:"endAt"`
	DeleteAfterCompletion bool            `json:"deleteAfterCompletion"`
	Group                 string          `json:"group"`
	CatchUpSeconds        *int            `json:"catchUpSeconds"`
	Retry                 *retryRequest   `json:"retry"`
	Notify                *Notify         `json:"notify"`
	HTTP                  *HTTPTarget     `json:"http"`
	DeploymentInfo        *DeploymentInfo `json:"deploymentInfo"`
	SpreadSeconds         *int            `json:"spreadSeconds"`
	// Overlap and PauseAfterFailures: overlap.go, selfpause.go.
	Overlap            string `json:"overlap"`
	PauseAfterFailures *int   `json:"pauseAfterFailures"`
}

// retryRequest is a definition's retry policy; a field left out takes its
// default, so that pointers tell "left out" from 0.
type retryRequest struct {
	MaxAttempts   *int `json:"maxAttempts"`
	MaxAgeSeconds *int `json:"maxAgeSeconds"`
}

// timerOptions is what turning a definition into a timer needs from the
// deployment that will store it; the rules themselves need nothing else,
// so the command line checks a timer file with the server's rules.
type timerOptions struct {
	// Now is the instant of the PUT: the timer's anchor, its creation,
	// and the earliest its first occurrence may be (to the second).
	Now time.Time
	// Shards is the deployment's shard count (0 or less: one shard).
	Shards int
	// SecretPrefix is the path every aws-secret(...) must lie under.
	SecretPrefix string
}

// newTimer checks definition in of timer id against every rule a timer
// obeys and returns the timer it describes, first occurrence and all, or
// an EINVALID error naming the first rule broken. The checks run in a
// fixed order, so the same bad definition always gets the same error.
func newTimer(id string, in putRequest, opt timerOptions) (*Timer, error) {
	data, err := callbackData(in.TimerCallbackData)
	if err != nil {
		return nil, err
	}
	if err := checkCallbackContext(data); err != nil {
		return nil, err
	}
	if data == nil && in.HTTP == nil {
		return nil, Errorf(EINVALID, "timerCallbackData is required unless an http target is given")
	}
	in.Schedule = strings.TrimSpace(in.Schedule)
	minute, err := minuteOf(id, in)
	if err != nil {
		return nil, err
	}
	retry, catchUp, err := checkDelivery(in, opt.SecretPrefix)
	if err != nil {
		return nil, err
	}
	overlap, pauseAfter, err := checkControls(in)
	if err != nil {
		return nil, err
	}
	spread, err := spreadOf(in.SpreadSeconds)
	if err != nil {
		return nil, err
	}
	now := opt.Now.UTC().Truncate(time.Second)
	t := &Timer{
		ID:                    id,
		ShardID:               shardFor(id, opt.Shards),
		MinuteOfHour:          minute,
		ScheduleExpr:          in.Schedule,
		Timezone:              in.Timezone,
		StartAt:               utcSecond(in.StartAt),
		EndAt:                 utcSecond(in.EndAt),
		DeleteAfterCompletion: in.DeleteAfterCompletion,
		CatchUpSeconds:        catchUp,
		Group:                 in.Group,
		Retry:                 retry,
		Notify:                in.Notify,
		Deployment:            in.DeploymentInfo.orNil(),
		Anchor:                now,
		CallbackData:          data,
		HTTP:                  in.HTTP,
		Overlap:               overlap,
		PauseAfterFailures:    pauseAfter,
		SpreadSeconds:         spread,
		CreatedAt:             now,
		UpdatedAt:             now,
	}
	if err := t.setFirst(now); err != nil {
		return nil, err
	}
	return t, nil
}

// callbackData is a definition's callback data as stored: compact, since
// fire messages and responses carry it that way, and nil for JSON null,
// which stands for none.
func callbackData(raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, Errorf(EINVALID, "timerCallbackData is not valid JSON")
	}
	return buf.Bytes(), nil
}

// minuteOf is the minute of the hour of a definition's hourly schedule:
// the one it names, or else one its id spreads to. A definition with a
// schedule expression gets the id's too, until setFirst replaces it.
func minuteOf(id string, in putRequest) (int, error) {
	switch {
	case in.MinuteOfHour != nil && in.Schedule != "":
		return 0, Errorf(EINVALID, "give either schedule or minuteOfHour (the hourly schedule), not both")
	case in.Timezone != "" && in.Schedule == "":
		return 0, Errorf(EINVALID, "timezone applies to a schedule; give a schedule too")
	case in.MinuteOfHour == nil:
		return defaultMinute(id), nil
	case *in.MinuteOfHour < 0 || *in.MinuteOfHour > 59:
		return 0, Errorf(EINVALID, "minuteOfHour must be between 0 and 59")
	}
	return *in.MinuteOfHour, nil
}

// checkDelivery checks how a definition is delivered and grouped: its
// HTTP target (normalised in place), retry policy, notification,
// deployment, group and catch-up window, in that order. It returns the
// retry policy and catch-up window with their defaults filled in.
func checkDelivery(in putRequest, prefix string) (RetryPolicy, int, error) {
	if in.HTTP != nil {
		if err := in.HTTP.Validate(prefix); err != nil {
			return RetryPolicy{}, 0, err
		}
	}
	retry, err := retryOf(in.Retry)
	if err != nil {
		return RetryPolicy{}, 0, err
	}
	if in.Notify != nil {
		if err := in.Notify.Validate(prefix); err != nil {
			return RetryPolicy{}, 0, err
		}
	}
	if in.DeploymentInfo != nil {
		if err := in.DeploymentInfo.Validate(); err != nil {
			return RetryPolicy{}, 0, err
		}
	}
	if in.Group != "" {
		if err := validateGroup(in.Group); err != nil {
			return RetryPolicy{}, 0, err
		}
	}
	catchUp, err := catchUpOf(in.CatchUpSeconds)
	return retry, catchUp, err
}

// retryOf is the retry policy a definition asks for, each field it
// leaves out at its default, within EventBridge Scheduler's bounds.
func retryOf(in *retryRequest) (RetryPolicy, error) {
	retry := defaultRetry()
	if in == nil {
		return retry, nil
	}
	if in.MaxAttempts != nil {
		retry.MaxAttempts = *in.MaxAttempts
	}
	if in.MaxAgeSeconds != nil {
		retry.MaxAgeSeconds = *in.MaxAgeSeconds
	}
	if retry.MaxAttempts < 0 || retry.MaxAttempts > MaxMaxAttempts {
		return RetryPolicy{}, Errorf(EINVALID, "retry.maxAttempts must be from 0 to %d", MaxMaxAttempts)
	}
	if retry.MaxAgeSeconds < MinMaxAgeSeconds || retry.MaxAgeSeconds > MaxMaxAgeSeconds {
		return RetryPolicy{}, Errorf(EINVALID, "retry.maxAgeSeconds must be from %d to %d", MinMaxAgeSeconds, MaxMaxAgeSeconds)
	}
	return retry, nil
}

// catchUpOf is the catch-up window a definition asks for, or the default.
func catchUpOf(s *int) (int, error) {
	if s == nil {
		return DefaultCatchUpSeconds, nil
	}
	if *s < MinCatchUpSeconds || *s > MaxCatchUpSeconds {
		return 0, Errorf(EINVALID, "catchUpSeconds must be from %d to %d", MinCatchUpSeconds, MaxCatchUpSeconds)
	}
	return *s, nil
}

// setFirst parses t's schedule and sets its first occurrence at or after
// now, refusing a schedule that has none left: such a timer would never
// fire. The first occurrence may be now itself: a rate schedule without
// startAt fires at once, as in EventBridge Scheduler.
func (t *Timer) setFirst(now time.Time) error {
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return err
	}
	first, ok := sched.Next(now.Add(-time.Nanosecond))
	if !ok {
		return Errorf(EINVALID, "schedule %q has no occurrence at or after %s", t.Expression(), now.Format(time.RFC3339))
	}
	t.NextFireAt = first
	if t.ScheduleExpr != "" {
		t.MinuteOfHour = first.UTC().Minute()
	}
	return nil
}

// utcSecond returns t in UTC to the second, the precision stored.
func utcSecond(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Second)
	return &u
}

// checkOccurrence refuses an instant that is not a past occurrence of t's
// schedule: replaying anything else would invent an occurrence.
func (t *Timer) checkOccurrence(at, now time.Time) error {
	if at.After(now) {
		return Errorf(EINVALID, "scheduledAt %s is in the future: only a past occurrence can be fired again", at.Format(time.RFC3339))
	}
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return err
	}
	if next, ok := sched.Next(at.Add(-time.Nanosecond)); !ok || !next.Equal(at) {
		return Errorf(EINVALID, "scheduledAt %s is not an occurrence of timer %s (%s)", at.Format(time.RFC3339Nano), t.ID, t.Expression())
	}
	return nil
}

// isLast reports whether x is t's last occurrence: a deleteAfterCompletion
// timer is deleted once that one has its outcome. A schedule that no
// longer parses has no last occurrence, so such a timer is kept.
func (t *Timer) isLast(x time.Time) bool {
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return false
	}
	_, more := sched.Next(x)
	return !more
}
