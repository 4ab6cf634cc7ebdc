package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
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

// Timer is one registered timer, as stored and as the API shows it. The JSON
// names are the Periodic Timer API's contract (the CDK construct callclock
// replaces): id, shardId, timeShardId and
// timerCallbackData keep their meaning for existing clients.
type Timer struct {
	ID      string `json:"id"`
	ShardID string `json:"shardId"`
	// MinuteOfHour is the Periodic Timer API's schedule, used when ScheduleExpr is empty:
	// every hour at second 0 of this minute, UTC. For other schedules it is
	// the UTC minute of the first occurrence, shown only in timeShardId.
	MinuteOfHour int `json:"-"`
	// ScheduleExpr is a cron(...), rate(...) or at(...) expression read in
	// Timezone (IANA; empty is UTC), bounded by StartAt and EndAt.
	ScheduleExpr string     `json:"schedule,omitempty"`
	Timezone     string     `json:"timezone,omitempty"`
	StartAt      *time.Time `json:"startAt,omitempty"`
	EndAt        *time.Time `json:"endAt,omitempty"`
	// Group names the timers a deployment pauses and resumes together.
	Group string `json:"group,omitempty"`
	// PausedAt and PauseReason say when and why the timer was paused;
	// nil while it runs. Occurrences that fall while paused are skipped.
	PausedAt    *time.Time `json:"pausedAt,omitempty"`
	PauseReason string     `json:"pauseReason,omitempty"`
	// DeleteAfterCompletion removes the timer once it has no occurrence left.
	DeleteAfterCompletion bool `json:"deleteAfterCompletion,omitempty"`
	// CatchUpSeconds is how late a sweep may still send an occurrence (after
	// missed sweeps); a later one is skipped and counted in MissedCount.
	CatchUpSeconds int `json:"catchUpSeconds"`
	// MissedCount and LastMissedAt record skipped occurrences.
	MissedCount  int        `json:"missedCount,omitempty"`
	LastMissedAt *time.Time `json:"lastMissedAt,omitempty"`
	// Anchor is a rate schedule's first occurrence without StartAt: the
	// time of the PUT that set the schedule.
	Anchor time.Time `json:"-"`
	// CallbackData is kept as the client sent it, compacted, so the
	// callback Lambda receives exactly what was registered.
	CallbackData json.RawMessage `json:"timerCallbackData,omitempty"`
	HTTP         *HTTPTarget     `json:"http,omitempty"`
	Retry        RetryPolicy     `json:"retry"`
	Notify       *Notify         `json:"notify,omitempty"`
	// Deployment says which deployment put the timer in place (the
	// Deployer's deployment.product, version, id and environment).
	Deployment *DeploymentInfo `json:"deploymentInfo,omitempty"`
	// LastFire is the outcome of the latest delivery attempt.
	LastFire *LastFire `json:"lastFire,omitempty"`
	// NextFireAt is the next occurrence not yet handed to the fire queue;
	// zero when the timer will not fire again.
	NextFireAt time.Time `json:"-"`
	// DueFrom is the instant from which the timer's occurrences are due:
	// its PUT (an occurrence at that instant included), or just after its
	// resume (what fell while it was paused is skipped). NextFireAt is
	// derived from it and the schedule, since the timer item changes at no
	// firing.
	DueFrom time.Time `json:"-"`
	// Slots are the timer's slot entries (see PlanDue), when its schedule
	// repeats within a week: the sweeper finds its occurrences there, and
	// a replacement, a pause or a delete removes them.
	Slots     []DueSlot `json:"-"`
	CreatedAt time.Time `json:"-"`
	UpdatedAt time.Time `json:"-"`
	// Version counts replacements; a fire message names the version it was
	// made from.
	Version int64 `json:"version"`
}

// HTTPTarget is the HTTP call a firing makes instead of a callback message.
// URL, header values and Body may hold aws-secret(/name) placeholders that
// are resolved from SSM Parameter Store at each firing.
type HTTPTarget struct {
	Method  string            `json:"method,omitempty" dynamodbav:"method"`
	URL     string            `json:"url" dynamodbav:"url"`
	Headers map[string]string `json:"headers,omitempty" dynamodbav:"headers,omitempty"`
	Body    string            `json:"body,omitempty" dynamodbav:"body,omitempty"`
	// TimeoutSeconds bounds one call, 1-MaxTimeoutSeconds; default 20, as the
	// Deployer's Callculon. The function's own deadline bounds it too.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty" dynamodbav:"timeoutSeconds,omitempty"`
	// SuccessCodes are the statuses that count as delivered; default any 2xx.
	SuccessCodes []int `json:"successCodes,omitempty" dynamodbav:"successCodes,omitempty"`
}

// Call timeouts, and the margins the invoker's Lambda timeout and the fire
// queue's visibility timeout keep above them (template.yaml; checked by
// TestTimeoutsFitTogether). A call cut off by Lambda is never settled, so
// SQS would deliver it again as if new: the longest call must end well
// within the function's timeout.
const (
	// MaxTimeoutSeconds is the longest a call may take: Callculon's own
	// request timeout (PT120S), which the Deployer's endpoints are written for.
	MaxTimeoutSeconds = 120
	// InvokeMarginSeconds is what the invoker needs beside the call: the
	// secrets, the claim, the outcome with its retries, a notification.
	InvokeMarginSeconds = 30
	// VisibilityFactor is AWS's advice for an SQS event source: the
	// queue's visibility timeout at least six times the function's.
	VisibilityFactor = 6
)

// RetryPolicy bounds the retries of a failed delivery, with EventBridge
// Scheduler's bounds and defaults.
type RetryPolicy struct {
	// MaxAttempts is the number of retries after the first try, 0-185.
	MaxAttempts int `json:"maxAttempts" dynamodbav:"maxAttempts"`
	// MaxAgeSeconds is how long after its instant an occurrence may still
	// be retried, 60-86400.
	MaxAgeSeconds int `json:"maxAgeSeconds" dynamodbav:"maxAgeSeconds"`
}

// Retry defaults and bounds.
const (
	DefaultMaxAttempts   = 185
	MaxMaxAttempts       = 185
	DefaultMaxAgeSeconds = 86400
	MinMaxAgeSeconds     = 60
	MaxMaxAgeSeconds     = 86400
)

// Notify posts a short Slack-compatible message about a delivery's outcome.
// Webhook may be an aws-secret(...) placeholder, as in the Deployer's files.
type Notify struct {
	Webhook string `json:"webhook" dynamodbav:"webhook"`
	// Channel is sent as the message's "channel", as the Deployer's Slack
	// notification does (a channel name without "#"); empty leaves the
	// webhook's own channel.
	Channel   string `json:"channel,omitempty" dynamodbav:"channel,omitempty"`
	OnFailure *bool  `json:"onFailure,omitempty" dynamodbav:"onFailure,omitempty"`
	OnSuccess *bool  `json:"onSuccess,omitempty" dynamodbav:"onSuccess,omitempty"`
}

// Wants reports whether an outcome (delivered or not) is to be notified:
// failures by default, successes only when asked.
func (n *Notify) Wants(delivered bool) bool {
	if n == nil || n.Webhook == "" {
		return false
	}
	if delivered {
		return n.OnSuccess != nil && *n.OnSuccess
	}
	return n.OnFailure == nil || *n.OnFailure
}

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

// DeploymentInfo says which deployment put a timer in place. The Deployer
// merges deployment.product, version and id into every timer file it
// deploys; callclock keeps them (and an environment) to show in GET and
// list and in notifications. They do not change when or how it fires.
type DeploymentInfo struct {
	Product     string `json:"product,omitempty" dynamodbav:"product,omitempty"`
	Version     string `json:"version,omitempty" dynamodbav:"version,omitempty"`
	ID          string `json:"id,omitempty" dynamodbav:"id,omitempty"`
	Environment string `json:"environment,omitempty" dynamodbav:"environment,omitempty"`
}

// MaxDeploymentField bounds each DeploymentInfo field, in characters.
const MaxDeploymentField = 128

// Validate checks that each field is short, printable text.
func (d *DeploymentInfo) Validate() error {
	for _, f := range []struct{ name, v string }{{"product", d.Product}, {"version", d.Version}, {"id", d.ID}, {"environment", d.Environment}} {
		if utf8.RuneCountInString(f.v) > MaxDeploymentField || strings.IndexFunc(f.v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return Errorf(EINVALID, "deploymentInfo.%s must be at most %d printable characters", f.name, MaxDeploymentField)
		}
	}
	return nil
}

// orNil returns nil for an empty DeploymentInfo, so none is stored.
func (d *DeploymentInfo) orNil() *DeploymentInfo {
	if d == nil || *d == (DeploymentInfo{}) {
		return nil
	}
	return d
}

// isHTTPURL reports whether s, with its placeholders standing for a
// value, is an absolute http or https URL with a host and, if it names a
// port, one from 1 to 65535: url.Parse takes any digits as a port, and a
// URL that can never be dialled would be retried to the end of its policy.
func isHTTPURL(s string) bool {
	u, err := url.Parse(secretPattern.ReplaceAllString(s, "secret"))
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

// LastFire is the outcome of a timer's latest delivery attempt.
type LastFire struct {
	ScheduledAt time.Time `json:"scheduledAt" dynamodbav:"scheduledAt"`
	AttemptedAt time.Time `json:"attemptedAt" dynamodbav:"attemptedAt"`
	Attempt     int       `json:"attempt" dynamodbav:"attempt"`
	// Outcome is delivered, retrying or failed (dead-lettered).
	Outcome string `json:"outcome" dynamodbav:"outcome"`
	Status  int    `json:"status,omitempty" dynamodbav:"status,omitempty"`
	// Manual marks a firing by hand.
	Manual bool `json:"manual,omitempty" dynamodbav:"manual,omitempty"`
	// Replay marks an occurrence delivered again on purpose (a redriven
	// dead letter, a fire naming it).
	Replay    bool   `json:"replay,omitempty" dynamodbav:"replay,omitempty"`
	Error     string `json:"error,omitempty" dynamodbav:"error,omitempty"`
	LatencyMs int64  `json:"latencyMs" dynamodbav:"latencyMs"`
	// Duplicates counts the copies of this occurrence's message that were
	// dropped (a second sweep's, a redelivery): history only.
	Duplicates int `json:"duplicatesSuppressed,omitempty" dynamodbav:"duplicates,omitempty"`
}

// Delivery outcomes.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeFailed    = "failed"
	// OutcomeMissed is an occurrence later than its catch-up window, not
	// sent; it appears in the history only.
	OutcomeMissed = "missed"
)

// FireMessage is the body of a fire-queue message: one occurrence of one
// timer, carrying what the invoker needs to deliver it without a read.
type FireMessage struct {
	TimerID      string          `json:"timerId"`
	Version      int64           `json:"version"`
	ScheduledAt  time.Time       `json:"scheduledAt"`
	CallbackData json.RawMessage `json:"timerCallbackData,omitempty"`
	HTTP         *HTTPTarget     `json:"http,omitempty"`
	Retry        *RetryPolicy    `json:"retry,omitempty"`
	Notify       *Notify         `json:"notify,omitempty"`
	// Deployment is the timer's, for the notification's text.
	Deployment *DeploymentInfo `json:"deploymentInfo,omitempty"`
	// Replay marks an occurrence fired again by hand (POST
	// /periodic/{id}/fire naming it): the invoker delivers it if it was
	// dead-lettered or never delivered, and records it as a replay.
	Replay bool `json:"replay,omitempty"`
	// Final marks the last occurrence of a deleteAfterCompletion timer:
	// the invoker deletes the timer once this occurrence has its final
	// outcome. The sweeper cannot delete it when sending, since the
	// invoker drops an occurrence of a timer that is gone.
	Final bool `json:"final,omitempty"`
	// NextLinkAt is the instant (Unix seconds) of the timer's next link,
	// written when this occurrence was handed on: the invoker deletes that
	// link when it finds the timer deleted, replaced or paused, so that a
	// stale timer's chain of links ends here. 0: none.
	NextLinkAt int64 `json:"nextLinkAt,omitempty"`
	// NextLinkParts is the partitions of that link's hour when it was
	// written (0: dueParts), which name its partition.
	NextLinkParts int `json:"nextLinkParts,omitempty"`
	// Manual marks an occurrence fired by hand (POST /periodic/{id}/fire):
	// it is delivered even while the timer is paused.
	Manual bool `json:"manual,omitempty"`
}

// fillFrom gives a message that names only its occurrence (the sweeper's,
// and the API's short-notice ones) the delivery of t, its timer as read
// after the claim, at the version the message names.
func (m *FireMessage) fillFrom(t *Timer) {
	if m.HTTP != nil || m.CallbackData != nil {
		return // a message that carries its delivery (one enqueued before this layout)
	}
	m.HTTP, m.CallbackData, m.Notify, m.Deployment = t.HTTP, t.CallbackData, t.Notify, t.Deployment
	if m.Retry == nil && t.Retry != (RetryPolicy{}) {
		r := t.Retry
		m.Retry = &r
	}
}

// IdempotencyKey names the occurrence a message stands for, so receivers can
// drop a repeated delivery of it.
func (m *FireMessage) IdempotencyKey() string {
	if m.Manual {
		return m.TimerID + "/manual/" + m.ScheduledAt.UTC().Format(time.RFC3339Nano)
	}
	return m.TimerID + "/" + m.ScheduledAt.UTC().Format(time.RFC3339)
}

// occurrence is the occurrence the message stands for, which the invoker
// claims.
func (m *FireMessage) occurrence() Occurrence {
	return Occurrence{TimerID: m.TimerID, At: m.ScheduledAt, Manual: m.Manual}
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

// TimeShardID is the Periodic Timer API's "<minute>:<id>" label.
func (t *Timer) TimeShardID() string { return fmt.Sprintf("%02d:%s", t.MinuteOfHour, t.ID) }

// Catch-up window bounds, in seconds.
const (
	// MinCatchUpSeconds is one sweep interval: a timer created just before
	// its instant is found by the next sweep up to that late.
	MinCatchUpSeconds     = 60
	DefaultCatchUpSeconds = 3600
	MaxCatchUpSeconds     = 86400
)

// Timer states, derived from whether an occurrence is left.
const (
	StateActive    = "active"
	StatePaused    = "paused"
	StateCompleted = "completed"
)

// State is StateActive while the timer has an occurrence left.
func (t *Timer) State() string {
	if t.PausedAt != nil {
		return StatePaused
	}
	if t.NextFireAt.IsZero() {
		return StateCompleted
	}
	return StateActive
}

// Expression is the timer's schedule expression; the Periodic Timer
// API's hourly schedule is the cron expression it stands for.
func (t *Timer) Expression() string {
	if t.ScheduleExpr != "" {
		return t.ScheduleExpr
	}
	return fmt.Sprintf("cron(%d * * * ? *)", t.MinuteOfHour)
}

// Schedule returns when the timer fires, loading its zone with zone.
func (t *Timer) Schedule(zone func(string) (*time.Location, error)) (Schedule, error) {
	loc, err := zone(t.Timezone)
	if err != nil {
		return nil, err
	}
	spec := ScheduleSpec{Expression: t.Expression(), Location: loc, Anchor: t.Anchor}
	if t.StartAt != nil {
		spec.StartAt = *t.StartAt
	}
	if t.EndAt != nil {
		spec.EndAt = *t.EndAt
	}
	return ParseSchedule(spec)
}

// MarshalJSON renders the API document: the stored fields plus the derived
// timeShardId, state and RFC 3339 instants.
func (t *Timer) MarshalJSON() ([]byte, error) {
	type plain Timer // drops this method, avoiding recursion
	var next *time.Time
	if !t.NextFireAt.IsZero() {
		n := t.NextFireAt.UTC()
		next = &n
	}
	var minute *int
	if t.ScheduleExpr == "" {
		minute = &t.MinuteOfHour
	}
	return marshalJSON(struct {
		*plain
		MinuteOfHour *int       `json:"minuteOfHour,omitempty"`
		TimeShardID  string     `json:"timeShardId"`
		State        string     `json:"state"`
		NextFireAt   *time.Time `json:"nextFireAt"`
		CreatedAt    time.Time  `json:"createdAt"`
		UpdatedAt    time.Time  `json:"updatedAt"`
	}{(*plain)(t), minute, t.TimeShardID(), t.State(), next, t.CreatedAt.UTC(), t.UpdatedAt.UTC()})
}

// marshalJSON is json.Marshal without HTML escaping, so that callback data
// keeps the '<', '>' and '&' its owner wrote.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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

// hash32 is the FNV-1a hash that spreads ids over shards and minutes.
func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// shardFor returns the shard a timer id lives in.
func shardFor(id string, shards int) string {
	shards = max(1, shards)
	return fmt.Sprintf("shard%d", hash32(id)%uint32(shards))
}

// defaultMinute spreads timers that name no minute over the hour, so a
// million of them do not all fire at minute 0.
func defaultMinute(id string) int { return int(hash32("minute:"+id) % 60) }

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
	// In name order, so that the error for a target with several bad
	// headers is the same at every PUT.
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
		// Header names are case-insensitive on the wire: of two that
		// differ only in case, one would silently replace the other.
		lower := strings.ToLower(name)
		if other, ok := byLower[lower]; ok {
			return Errorf(EINVALID, "http.headers: %q and %q are the same header (header names are case-insensitive); give it once", other, name)
		}
		byLower[lower] = name
	}
	return checkSecrets("http.body", h.Body, prefix)
}

// DefaultSecretPrefix is the SSM path every aws-secret(...) must lie under
// unless SECRET_PREFIX names another: the invoker's IAM policy grants
// this path and nothing else.
const DefaultSecretPrefix = "/callclock/"

// DefaultShards is the number of shards timers are spread over unless
// SHARDS names another. A timer's shard follows from its id and this
// number, so every part of one deployment must use the same.
const DefaultShards = 4

// defaultRetry is the policy of a timer that gives none: EventBridge
// Scheduler's, so that timers moved from it keep their retries.
func defaultRetry() RetryPolicy {
	return RetryPolicy{MaxAttempts: DefaultMaxAttempts, MaxAgeSeconds: DefaultMaxAgeSeconds}
}

// withDefaults is the policy a delivery follows when its message carries
// p: nil (a message without one) is defaultRetry. A MaxAgeSeconds of 0,
// which no valid policy has, stands for one written before the field
// existed; MaxAttempts 0 is a valid "no retries" and is kept.
func (p *RetryPolicy) withDefaults() RetryPolicy {
	if p == nil {
		return defaultRetry()
	}
	r := *p
	if r.MaxAgeSeconds == 0 {
		r.MaxAgeSeconds = DefaultMaxAgeSeconds
	}
	return r
}

// catchUpWindow is how late, in seconds, a sweep may still send t's
// occurrence. A timer stored before catchUpSeconds existed has none (0),
// and gets the default rather than a window that would skip everything.
func (t *Timer) catchUpWindow() int {
	if t.CatchUpSeconds <= 0 {
		return DefaultCatchUpSeconds
	}
	return t.CatchUpSeconds
}

// newFireMessage is the message of timer id's occurrence at at, made
// from the timer's version. It names the occurrence only: the invoker
// reads the timer after its claim and takes the delivery from it
// (fillFrom), so a message never carries a definition that was replaced.
// The caller marks it Manual, Replay or Final as it is.
func newFireMessage(id string, version int64, at time.Time) FireMessage {
	return FireMessage{TimerID: id, Version: version, ScheduledAt: at}
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
