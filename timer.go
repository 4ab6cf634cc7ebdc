package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"
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
	// Overlap and PauseAfterFailures are issue 14's delivery controls
	// (overlap.go, selfpause.go): what an occurrence does while the
	// previous call still runs ("" is OverlapAllow), and after how many
	// consecutive failed occurrences the timer pauses itself (0: never).
	Overlap            string `json:"overlap,omitempty"`
	PauseAfterFailures int    `json:"pauseAfterFailures,omitempty"`
	// SpreadSeconds is the timer's spread window (spread.go): each
	// occurrence is delivered spreadOffset into it; 0: at its instant.
	SpreadSeconds int `json:"spreadSeconds,omitempty"`
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
// are resolved from SSM Parameter Store at each firing, and callclock(name)
// placeholders resolved at each attempt (placeholders.go).
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
	// Signing, when set, signs each call (signing.go).
	Signing *Signing `json:"signing,omitempty" dynamodbav:"signing,omitempty"`
	// LimitKey names the destination whose limit the calls obey
	// (limits.go); empty: none.
	LimitKey string `json:"limitKey,omitempty" dynamodbav:"limitKey,omitempty"`
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

// orNil returns nil for an empty DeploymentInfo, so none is stored.
func (d *DeploymentInfo) orNil() *DeploymentInfo {
	if d == nil || *d == (DeploymentInfo{}) {
		return nil
	}
	return d
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

	// PlannedAt is a spread occurrence's planned delivery instant
	// (spread.go), against which its lateness is measured; nil: its
	// scheduledAt.
	PlannedAt *time.Time `json:"plannedAt,omitempty" dynamodbav:"plannedAt,omitempty"`
	// LimitedMs is how long the destination's limit held the attempt.
	LimitedMs int64 `json:"limitedMs,omitempty" dynamodbav:"limitedMs,omitempty"`
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
	// Group is the timer's, for callclock(group); fillFrom sets it from
	// the timer, so a message sent without it still has it.
	Group string `json:"group,omitempty"`
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
	// Overlap, PauseAfterFailures and DueFrom are the timer's, as the
	// invoker read it after its claim (fillFrom); never sent.
	Overlap            string    `json:"-"`
	PauseAfterFailures int       `json:"-"`
	DueFrom            time.Time `json:"-"`
	// PlannedAt is a spread occurrence's planned delivery instant, and
	// Redelay marks a message sent with its delay capped at SQS's 900 s,
	// whose first receive the invoker returns to the queue until then
	// (spread.go). Zero and false for a timer without spread.
	PlannedAt time.Time `json:"plannedAt,omitzero"`
	Redelay   bool      `json:"redelay,omitempty"`
}

// fillFrom gives a message that names only its occurrence (the sweeper's,
// and the API's short-notice ones) the delivery of t, its timer as read
// after the claim, at the version the message names.
func (m *FireMessage) fillFrom(t *Timer) {
	m.Group = t.Group
	m.Overlap, m.PauseAfterFailures, m.DueFrom = t.Overlap, t.PauseAfterFailures, t.DueFrom
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
