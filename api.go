package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// MaxBodyBytes bounds a request body. A fire message carries the timer's
// callback data and HTTP target, so 64 KiB keeps every message far below
// SQS's 256 KiB limit (and DynamoDB's 400 KB item limit).
const MaxBodyBytes = 64 << 10

// timerStore is what the API needs from the timer table.
type timerStore interface {
	Get(ctx context.Context, id string) (*Timer, error)
	Show(ctx context.Context, id string) (*Timer, error)
	Put(ctx context.Context, t *Timer, now time.Time) (*Timer, bool, []time.Time, error)
	Delete(ctx context.Context, id string) error
	Pause(ctx context.Context, id, reason string, now time.Time) (*Timer, error)
	Resume(ctx context.Context, id string, now time.Time, zone func(string) (*time.Location, error)) (*Timer, []time.Time, error)
	Group(ctx context.Context, group string, page func([]*Timer) error) error
	List(ctx context.Context, group, state string, limit int32, cursor map[string]string, now time.Time) ([]*Timer, map[string]string, error)
	History(ctx context.Context, id string, limit int32) ([]LastFire, error)
	PauseGroup(ctx context.Context, group, reason string, now time.Time) error
	ResumeGroup(ctx context.Context, group string) error
	GroupPause(ctx context.Context, group string) (*time.Time, string, error)
}

// API serves the REST API behind API Gateway (openapi.yaml describes it):
// timers, their pause, resume, manual fire and history, the list, and
// groups. API Gateway has already checked SigV4 when it calls us.
type API struct {
	Timers timerStore
	// Shards is the number of shards timers are spread over. Default
	// DefaultShards.
	Shards int
	// SecretPrefix is the SSM path every aws-secret(...) must lie under.
	// Default DefaultSecretPrefix.
	SecretPrefix string
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Log receives one line per request. Default slog.Default().
	Log *slog.Logger
	// Fire and FireQueueURL enqueue manual fires; nil refuses them.
	Fire         messageSender
	FireQueueURL string
}

// NewAPI returns an API over timers with the defaults above.
func NewAPI(timers timerStore) *API {
	return &API{Timers: timers, Shards: DefaultShards, SecretPrefix: DefaultSecretPrefix, Now: time.Now, Log: slog.Default()}
}

// methodError is an EMETHOD error that knows which methods the route allows.
type methodError struct {
	err   *Error
	allow string
}

// Error is the EMETHOD error's text.
func (e *methodError) Error() string { return e.err.Error() }

// Unwrap lets ErrorCode find the EMETHOD code.
func (e *methodError) Unwrap() error { return e.err }

// methodNotAllowed refuses method on route, which serves allow.
func methodNotAllowed(method, route, allow string) error {
	return &methodError{Errorf(EMETHOD, "method %s is not allowed on %s", method, route), allow}
}

// Handle answers one API Gateway proxy request. It never fails: every error
// becomes a JSON error response, since a Go error would reach the client as
// a bare 502.
func (a *API) Handle(ctx context.Context, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	status, body, err := a.route(ctx, req)
	if err != nil {
		status, body = errorResponse(err)
		if ErrorCode(err) == EINTERNAL {
			a.Log.ErrorContext(ctx, "api request failed", "method", req.HTTPMethod, "path", req.Path,
				"requestId", req.RequestContext.RequestID, "error", err.Error())
		}
	}
	resp := render(status, body)
	var me *methodError
	if errors.As(err, &me) {
		resp.Headers["Allow"] = me.allow
	}
	a.Log.InfoContext(ctx, "api request", "method", req.HTTPMethod, "path", req.Path, "status", status,
		"requestId", req.RequestContext.RequestID, "caller", req.RequestContext.Identity.UserArn)
	return resp
}

// render is a handler's answer as API Gateway returns it: JSON, with a
// final newline for the terminal's sake.
func render(status int, body any) events.APIGatewayProxyResponse {
	b, err := marshalJSON(body)
	if err != nil { // only our own types get here; a failure is a bug
		var eb map[string]any
		status, eb = errorResponse(err)
		b, _ = marshalJSON(eb)
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b) + "\n",
	}
}

// The kinds of resource a path names (resourceOf).
const (
	resCollection = "collection" // /periodic
	resTimer      = "timer"      // /periodic/{id}
	resHistory    = "history"    // /periodic/{id}/history
	resUpcoming   = "upcoming"   // /periodic/{id}/upcoming
	resAction     = "action"     // /periodic/{id}/{action}, /groups/{group}/{action}
)

// resourceOf names the kind of resource a path's segments address, ""
// for none.
func resourceOf(segs []string) string {
	switch {
	case len(segs) == 1 && segs[0] == "periodic":
		return resCollection
	case len(segs) == 2 && segs[0] == "periodic":
		return resTimer
	case len(segs) != 3:
		return ""
	case segs[0] == "periodic" && segs[2] == "history":
		return resHistory
	case segs[0] == "periodic" && segs[2] == "upcoming":
		return resUpcoming
	case segs[0] == "periodic" && actions[segs[2]], segs[0] == "groups" && segs[2] != "fire" && actions[segs[2]]:
		return resAction
	}
	return ""
}

// route parses the path and dispatches on it: parse, call, render.
func (a *API) route(ctx context.Context, req events.APIGatewayProxyRequest) (int, any, error) {
	segs, err := pathSegments(req.Path)
	if err != nil {
		return 0, nil, err
	}
	switch resourceOf(segs) {
	case resCollection:
		if req.HTTPMethod != http.MethodGet {
			return 0, nil, methodNotAllowed(req.HTTPMethod, "/periodic", "GET")
		}
		return a.list(ctx, req)
	case resTimer:
		return a.timer(ctx, segs[1], req)
	case resHistory:
		if req.HTTPMethod != http.MethodGet {
			return 0, nil, methodNotAllowed(req.HTTPMethod, "/periodic/{id}/history", "GET")
		}
		return a.history(ctx, segs[1])
	case resUpcoming:
		if req.HTTPMethod != http.MethodGet {
			return 0, nil, methodNotAllowed(req.HTTPMethod, "/periodic/{id}/upcoming", "GET")
		}
		return a.upcoming(ctx, segs[1], req.QueryStringParameters["count"])
	case resAction:
		if req.HTTPMethod != http.MethodPost {
			return 0, nil, methodNotAllowed(req.HTTPMethod, "/"+segs[0]+"/{id}/"+segs[2], "POST")
		}
		if segs[0] == "groups" {
			return a.groupAction(ctx, segs[1], segs[2], req)
		}
		return a.timerAction(ctx, segs[1], segs[2], req)
	}
	return 0, nil, Errorf(ENOTFOUND, "no such resource: %s", req.Path)
}

// timer is GET, PUT or DELETE /periodic/{id}.
func (a *API) timer(ctx context.Context, id string, req events.APIGatewayProxyRequest) (int, any, error) {
	if err := validateID(id); err != nil {
		return 0, nil, err
	}
	switch req.HTTPMethod {
	case http.MethodGet:
		t, err := a.Timers.Show(ctx, id)
		return http.StatusOK, a.withNext(t), err
	case http.MethodPut:
		return a.put(ctx, id, req)
	case http.MethodDelete:
		return http.StatusOK, id, a.Timers.Delete(ctx, id)
	}
	return 0, nil, methodNotAllowed(req.HTTPMethod, "/periodic/{id}", "DELETE, GET, PUT")
}

// history is GET /periodic/{id}/history: the latest 50 outcomes, newest
// first, kept for a week.
func (a *API) history(ctx context.Context, id string) (int, any, error) {
	if err := validateID(id); err != nil {
		return 0, nil, err
	}
	if _, err := a.Timers.Get(ctx, id); err != nil {
		return 0, nil, err
	}
	h, err := a.Timers.History(ctx, id, 50)
	return http.StatusOK, map[string]any{"timerId": id, "history": h}, err
}

// actions are the POST sub-resources of a timer or a group; fire is a
// timer's only.
var actions = map[string]bool{"pause": true, "resume": true, "fire": true}

// pauseRequest is the optional body of a pause.
type pauseRequest struct {
	Reason string `json:"reason"`
}

// pauseReason reads the optional {"reason": ...} of a pause.
func pauseReason(req events.APIGatewayProxyRequest) (string, error) {
	var in pauseRequest
	if strings.TrimSpace(req.Body) == "" {
		return "", nil
	}
	if err := decodeBody(req, &in); err != nil {
		return "", err
	}
	if utf8.RuneCountInString(in.Reason) > 256 {
		return "", Errorf(EINVALID, "reason must be at most 256 characters")
	}
	return in.Reason, nil
}

// timerAction is POST /periodic/{id}/pause, /resume or /fire.
func (a *API) timerAction(ctx context.Context, id, action string, req events.APIGatewayProxyRequest) (int, any, error) {
	if err := validateID(id); err != nil {
		return 0, nil, err
	}
	now := a.Now().UTC()
	switch action {
	case "pause":
		reason, err := pauseReason(req)
		if err != nil {
			return 0, nil, err
		}
		t, err := a.Timers.Pause(ctx, id, reason, now)
		return http.StatusOK, a.withNext(t), err
	case "resume":
		t, err := a.resume(ctx, id, now)
		return http.StatusOK, a.withNext(t), err
	}
	var in fireRequest
	if strings.TrimSpace(req.Body) != "" {
		if err := decodeBody(req, &in); err != nil {
			return 0, nil, err
		}
	}
	return a.fire(ctx, id, now, in.ScheduledAt)
}

// fireRequest is the optional body of POST /periodic/{id}/fire.
type fireRequest struct {
	// ScheduledAt names a past occurrence to deliver again (one that was
	// dead-lettered, or never delivered); without it the timer fires now.
	ScheduledAt *time.Time `json:"scheduledAt"`
}

// fire is POST /periodic/{id}/fire: the timer's delivery through the fire
// queue and the invoker, even while the timer is paused: now, as a manual
// firing of its own, or, when at is given, as that past occurrence again,
// which the invoker delivers only if it was not delivered (a replay of a
// dead letter keeps the occurrence's idempotency key).
func (a *API) fire(ctx context.Context, id string, now time.Time, at *time.Time) (int, any, error) {
	if a.Fire == nil {
		return 0, nil, errors.New("manual fire needs FIRE_QUEUE_URL")
	}
	t, err := a.Timers.Get(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	msg := newFireMessage(t.ID, t.Version, now)
	msg.Manual = true
	if at != nil {
		if err := t.checkOccurrence(at.UTC(), now); err != nil {
			return 0, nil, err
		}
		msg.ScheduledAt, msg.Manual, msg.Replay = at.UTC(), false, true
	}
	body, err := marshalJSON(msg)
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.Fire.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &a.FireQueueURL, MessageBody: aws.String(string(body))}); err != nil {
		return 0, nil, fmt.Errorf("enqueue manual fire of %s: %w", id, err)
	}
	out := map[string]any{"timerId": id, "scheduledAt": msg.ScheduledAt, "manual": msg.Manual, "idempotencyKey": msg.IdempotencyKey()}
	if msg.Replay {
		out["replay"] = true
	}
	return http.StatusAccepted, out, nil
}

// resume resumes timer id and sends the occurrences that are due within
// seconds, which are the API's to send (see sendNow).
func (a *API) resume(ctx context.Context, id string, now time.Time) (*Timer, error) {
	t, direct, err := a.Timers.Resume(ctx, id, now, loadZone)
	if err == nil {
		err = a.sendNow(ctx, t, direct, now)
	}
	return t, err
}

// groupAction is POST /groups/{group}/pause or /resume: every timer of
// the group, several at a time. Repeating it is harmless.
func (a *API) groupAction(ctx context.Context, group, action string, req events.APIGatewayProxyRequest) (int, any, error) {
	if err := validateGroup(group); err != nil {
		return 0, nil, err
	}
	var reason string
	if action == "pause" {
		var err error
		if reason, err = pauseReason(req); err != nil {
			return 0, nil, err
		}
	}
	now := a.Now().UTC()
	// The group's own record first: a timer created from now on takes the
	// group's state, and the timers listed below are the ones before it.
	var err error
	if action == "pause" {
		err = a.Timers.PauseGroup(ctx, group, reason, now)
	} else {
		err = a.Timers.ResumeGroup(ctx, group)
	}
	if err != nil {
		return 0, nil, err
	}
	total, changed, err := a.eachOfGroup(ctx, group, func(t *Timer) (bool, error) {
		return a.applyAction(ctx, t, action, reason, now)
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"group": group, "action": action, "timers": total, "changed": changed}, nil
}

// groupParallelism bounds a group action's calls in flight: enough to
// pause a deployment's timers within the request, few enough not to be
// throttled.
const groupParallelism = 16

// eachOfGroup calls do for every timer of group, groupParallelism at a
// time, and counts the timers and those do changed. A timer deleted
// meanwhile (ENOTFOUND) is counted but is no error: there is nothing
// left to do to it. Every other error is returned, joined.
func (a *API) eachOfGroup(ctx context.Context, group string, do func(*Timer) (bool, error)) (total, changed int, err error) {
	var (
		mu   sync.Mutex
		errs []error
	)
	err = a.Timers.Group(ctx, group, func(page []*Timer) error {
		var wg sync.WaitGroup
		slots := make(chan struct{}, groupParallelism)
		for _, t := range page {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				ch, err := do(t)
				mu.Lock()
				defer mu.Unlock()
				total++
				switch {
				case err == nil && ch:
					changed++
				case err == nil:
				case ErrorCode(err) != ENOTFOUND:
					errs = append(errs, err)
				}
			}()
		}
		wg.Wait()
		return nil
	})
	return total, changed, errors.Join(append(errs, err)...)
}

// applyAction pauses or resumes t, as listed, and reports whether that
// changed it: it was running and is paused, or the other way.
func (a *API) applyAction(ctx context.Context, t *Timer, action, reason string, now time.Time) (bool, error) {
	running := t.PausedAt == nil
	if action == "pause" {
		_, err := a.Timers.Pause(ctx, t.ID, reason, now)
		return running, err
	}
	_, err := a.resume(ctx, t.ID, now)
	return !running, err
}

// pathSegments splits a request path and unescapes each segment, once.
// path is the REST proxy event's path, which API Gateway passes as the
// client sent it, percent-encoded; splitting before unescaping keeps an
// escaped "/" inside its segment, where validateID refuses it.
func pathSegments(path string) ([]string, error) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, Errorf(EINVALID, "malformed path escape in %q", s)
		}
		segs[i] = u
	}
	return segs, nil
}

// put is PUT /periodic/{id}: create or replace the timer.
func (a *API) put(ctx context.Context, id string, req events.APIGatewayProxyRequest) (int, any, error) {
	var in putRequest
	req, err := deployerRequest(id, req)
	if err != nil {
		return 0, nil, err
	}
	if err := decodeBody(req, &in); err != nil {
		return 0, nil, err
	}
	t, err := a.newTimer(id, in)
	if err != nil {
		return 0, nil, err
	}
	if t.Group != "" {
		// A timer a deployment adds to its paused group waits for the
		// group's resume, as the group's other timers do.
		if t.PausedAt, t.PauseReason, err = a.Timers.GroupPause(ctx, t.Group); err != nil {
			return 0, nil, err
		}
	}
	now := a.Now().UTC().Truncate(time.Second) // as newTimer's: an occurrence in this second is still to come
	stored, created, direct, err := a.Timers.Put(ctx, t, now)
	if err != nil {
		return 0, nil, err
	}
	if err := a.sendNow(ctx, stored, direct, now); err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, a.withNext(stored), nil
	}
	return http.StatusOK, a.withNext(stored), nil
}

// sendNow sends t's occurrences at, each delayed to its instant: the ones
// within shortNotice of a PUT or a resume, which are the API's to send
// (see due.go), so that a timer created seconds before its instant fires
// on time. A failure is the request's: the client's retry sends them
// again, and the invoker's claim drops any copy.
func (a *API) sendNow(ctx context.Context, t *Timer, at []time.Time, now time.Time) error {
	if len(at) == 0 {
		return nil
	}
	if a.Fire == nil {
		return errors.New("timer " + t.ID + " fires within seconds, which needs FIRE_QUEUE_URL")
	}
	for _, x := range at {
		msg := newFireMessage(t.ID, t.Version, x)
		msg.Final = t.DeleteAfterCompletion && x.Equal(at[len(at)-1]) && t.isLast(x)
		spreadMessage(&msg, t.SpreadSeconds, a.Now())
		body, err := marshalJSON(msg)
		if err != nil {
			return err
		}
		if _, err := a.Fire.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &a.FireQueueURL, MessageBody: aws.String(string(body)),
			DelaySeconds: delaySeconds(msg.plannedAt(), a.Now())}); err != nil {
			return fmt.Errorf("enqueue the occurrence of %s at %s: %w", t.ID, x.Format(time.RFC3339), err)
		}
	}
	return nil
}

// withNext fills in t's next occurrence at or after now, which the API
// shows (nil: none left, or paused): the timer item does not change as it
// fires, so it is derived from the schedule.
func (a *API) withNext(t *Timer) *Timer {
	if t == nil {
		return nil
	}
	t.NextFireAt = time.Time{}
	if t.PausedAt != nil {
		return t
	}
	if sched, err := t.Schedule(loadZone); err == nil {
		// An occurrence in the current second is still next: it is firing.
		if next, ok := sched.Next(maxTime(a.Now().UTC().Truncate(time.Second), t.DueFrom).Add(-time.Nanosecond)); ok {
			t.NextFireAt = next
		}
	}
	return t
}

// deployerRequest replaces a PUT body in the Deployer's timer-file format (a
// top-level "deployment" or "request"; see readDeployerTimer in deployer.go) with
// the callclock body it stands for. Any other body is returned unchanged,
// for the strict decoding.
func deployerRequest(id string, req events.APIGatewayProxyRequest) (events.APIGatewayProxyRequest, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return req, nil // decodeBody reports it
		}
		body = b
	}
	if len(body) > MaxBodyBytes || !isDeployerDoc(body) {
		return req, nil
	}
	d, err := readDeployerTimer(body)
	switch {
	case err != nil:
		return req, Errorf(EINVALID, "%s", err.Error())
	case len(d.Warnings) > 0:
		// No plan shows a warning here: the API stays strict.
		return req, Errorf(EINVALID, "Deployer timer %s: %s", d.ID, strings.TrimSuffix(d.Warnings[0], " ignored"))
	case d.ID != id:
		return req, Errorf(EINVALID, "the Deployer timer's name %q must equal the id in the path %q", d.ID, id)
	case !d.Enabled:
		return req, Errorf(EINVALID, "the Deployer timer %s has deployment.enabled false: a disabled timer is not deployed (DELETE it instead)", id)
	}
	req.Body, req.IsBase64Encoded = string(d.Body), false
	return req, nil
}

// newTimer is newTimer with the API's clock, shard count and secret
// prefix. timer_files.go calls it until it calls newTimer itself.
func (a *API) newTimer(id string, in putRequest) (*Timer, error) {
	return newTimer(id, in, timerOptions{Now: a.Now(), Shards: a.Shards, SecretPrefix: a.SecretPrefix})
}
