package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table's layout, version 2 (LayoutVersion). One table, keyed by pk
// (partition) and sk (sort), holds every kind of item; each kind is named
// here, and README.md's "Table layout" section draws them.
//
//	item                 pk                   sk
//	timer                <timer id>           timer
//	occurrence           <timer id>           occ#<instant>[#manual]
//	shard lease          #lease#<shard>       lease
//	group pause          #group#<group>       group
//
// A timer and its occurrences share one item collection, so a timer's
// history is a query of its own partition, with no index to write. An
// occurrence item is the claim, the settle and the history record of one
// occurrence at once. Timer ids and group names cannot contain '#', so no
// timer collides with the other kinds.
const (
	// LayoutVersion is stored on every timer item (attribute layout), so
	// that the next change of layout can find and migrate the old items.
	LayoutVersion = 2

	attrPK = "pk"
	attrSK = "sk"

	skTimer      = "timer"
	skOccurrence = "occ#" // + occurrenceInstant(at), + "#manual" for a fire by hand
	skLease      = "lease"
	skGroup      = "group"

	pkLease = "#lease#" // + shard
	pkGroup = "#group#" // + group

	// DueIndex is the global secondary index the sweeper queries: partition
	// key shardId, sort key nextFireAt (Unix seconds). It is sparse: a timer
	// without a next occurrence has no nextFireAt and drops out of it.
	DueIndex = "byShardDue"
	// GroupIndex holds every timer and nothing else (partition key
	// timerGroup, sort key id): a group's timers are one query of it, and
	// the list of all timers is a scan of it, which reads no occurrence,
	// lease or group item.
	GroupIndex = "byGroup"
	// attrTimerGroup is GroupIndex's partition key: the timer's group, or
	// noGroup.
	attrTimerGroup = "timerGroup"
	// noGroup is the timerGroup of a timer in no group; groups cannot
	// contain '#'.
	noGroup = "#"
)

// dynamoAPI is the part of the DynamoDB client the store uses.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store keeps timers in one DynamoDB table keyed by id, with DueIndex for
// the sweeper.
type Store struct {
	DB    dynamoAPI
	Table string
	// PageLimit caps the items of one due-index page. Default 0: DynamoDB's
	// own 1 MB pages.
	PageLimit int32
}

// NewStore returns a Store on table.
func NewStore(db dynamoAPI, table string) *Store { return &Store{DB: db, Table: table} }

// timerItem is the DynamoDB form of a Timer. Instants are Unix seconds
// (nextFireAt, so the index sorts by it) or RFC 3339 text (for people
// reading the console).
type timerItem struct {
	PK                    string          `dynamodbav:"pk"`
	SK                    string          `dynamodbav:"sk"`
	Layout                int             `dynamodbav:"layout"`
	TimerGroup            string          `dynamodbav:"timerGroup"`
	ID                    string          `dynamodbav:"id"`
	ShardID               string          `dynamodbav:"shardId"`
	MinuteOfHour          int             `dynamodbav:"minuteOfHour"`
	Schedule              string          `dynamodbav:"schedule,omitempty"`
	Timezone              string          `dynamodbav:"timezone,omitempty"`
	StartAt               string          `dynamodbav:"startAt,omitempty"`
	EndAt                 string          `dynamodbav:"endAt,omitempty"`
	AnchorAt              string          `dynamodbav:"anchorAt,omitempty"`
	DeleteAfterCompletion bool            `dynamodbav:"deleteAfterCompletion,omitempty"`
	Group                 string          `dynamodbav:"group,omitempty"`
	PausedAt              string          `dynamodbav:"pausedAt,omitempty"`
	PauseReason           string          `dynamodbav:"pauseReason,omitempty"`
	CatchUpSeconds        *int            `dynamodbav:"catchUpSeconds,omitempty"`
	MissedCount           int             `dynamodbav:"missedCount,omitempty"`
	LastMissedAt          int64           `dynamodbav:"lastMissedAt,omitempty"`
	CallbackData          string          `dynamodbav:"timerCallbackData,omitempty"`
	HTTP                  *HTTPTarget     `dynamodbav:"http,omitempty"`
	Retry                 RetryPolicy     `dynamodbav:"retry"`
	Notify                *Notify         `dynamodbav:"notify,omitempty"`
	Deployment            *DeploymentInfo `dynamodbav:"deploymentInfo,omitempty"`
	NextFireAt            int64           `dynamodbav:"nextFireAt,omitempty"`
	CreatedAt             string          `dynamodbav:"createdAt"`
	UpdatedAt             string          `dynamodbav:"updatedAt"`
	Version               int64           `dynamodbav:"version"`
}

// optionalAttrs are removed from the item when a replacement lacks them.
var optionalAttrs = []string{"group", "schedule", "timezone", "startAt", "endAt", "anchorAt", "deleteAfterCompletion", "catchUpSeconds",
	"timerCallbackData", "http", "notify", "deploymentInfo", "nextFireAt"}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func parseTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

func toItem(t *Timer) timerItem {
	it := timerItem{
		PK:           t.ID,
		SK:           skTimer,
		Layout:       LayoutVersion,
		TimerGroup:   cmp.Or(t.Group, noGroup),
		ID:           t.ID,
		ShardID:      t.ShardID,
		MinuteOfHour: t.MinuteOfHour,
		Schedule:     t.ScheduleExpr,
		Timezone:     t.Timezone,
		StartAt:      formatTime(t.StartAt),
		EndAt:        formatTime(t.EndAt),
		CallbackData: string(t.CallbackData),
		HTTP:         t.HTTP,
		Retry:        t.Retry,
		Notify:       t.Notify,
		Deployment:   t.Deployment,
		CreatedAt:    formatTime(&t.CreatedAt),
		UpdatedAt:    formatTime(&t.UpdatedAt),
		Version:      t.Version,

		DeleteAfterCompletion: t.DeleteAfterCompletion,
		Group:                 t.Group,
		CatchUpSeconds:        &t.CatchUpSeconds,
	}
	// Only a rate schedule has an anchor worth keeping.
	if strings.HasPrefix(t.ScheduleExpr, "rate(") {
		it.AnchorAt = formatTime(&t.Anchor)
	}
	if !t.NextFireAt.IsZero() {
		it.NextFireAt = t.NextFireAt.Unix()
	}
	return it
}

func fromItem(av map[string]types.AttributeValue) (*Timer, error) {
	var it timerItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode timer item: %w", err)
	}
	t := &Timer{
		ID:           it.ID,
		ShardID:      it.ShardID,
		MinuteOfHour: it.MinuteOfHour,
		ScheduleExpr: it.Schedule,
		Timezone:     it.Timezone,
		StartAt:      parseTime(it.StartAt),
		EndAt:        parseTime(it.EndAt),
		HTTP:         it.HTTP,
		Retry:        it.Retry,
		Notify:       it.Notify,
		Deployment:   it.Deployment,
		Version:      it.Version,

		DeleteAfterCompletion: it.DeleteAfterCompletion,
		Group:                 it.Group,
		PausedAt:              parseTime(it.PausedAt),
		PauseReason:           it.PauseReason,
		CatchUpSeconds:        DefaultCatchUpSeconds,
		MissedCount:           it.MissedCount,
	}
	if it.CatchUpSeconds != nil {
		t.CatchUpSeconds = *it.CatchUpSeconds
	}
	if it.LastMissedAt != 0 {
		m := time.Unix(it.LastMissedAt, 0).UTC()
		t.LastMissedAt = &m
	}
	if a := parseTime(it.AnchorAt); a != nil {
		t.Anchor = *a
	}
	if it.CallbackData != "" {
		t.CallbackData = json.RawMessage(it.CallbackData)
	}
	if it.NextFireAt != 0 {
		t.NextFireAt = time.Unix(it.NextFireAt, 0).UTC()
	}
	if c := parseTime(it.CreatedAt); c != nil {
		t.CreatedAt = *c
	}
	if u := parseTime(it.UpdatedAt); u != nil {
		t.UpdatedAt = *u
	}
	return t, nil
}

// itemKey is the key of the item pk, sk.
func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// timerKey is the key of timer id's item.
func timerKey(id string) map[string]types.AttributeValue { return itemKey(id, skTimer) }

// Get returns the timer with id, or an ENOTFOUND error.
func (s *Store) Get(ctx context.Context, id string) (*Timer, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            timerKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get timer %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	return fromItem(out.Item)
}

// Put creates or replaces t in one atomic update. It keeps the original
// createdAt, increments version, and returns the timer as stored and whether
// it was created. t.CreatedAt and t.Version are ignored on input.
//
// A paused timer stays paused: the replacement is stored without a next
// occurrence, which Resume computes. Whether it is paused is decided by the
// write's own condition, not by a read before it.
//
// t.PausedAt set (its group is paused) creates a new timer paused, with
// t.PauseReason; an existing timer keeps its own state.
func (s *Store) Put(ctx context.Context, t *Timer) (*Timer, bool, error) {
	av, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return nil, false, fmt.Errorf("encode timer %s: %w", t.ID, err)
	}
	// A stored paused timer is written without a next occurrence.
	asPaused := maps.Clone(av)
	delete(asPaused, "nextFireAt")
	var ccf *types.ConditionalCheckFailedException
	if t.PausedAt != nil {
		created := maps.Clone(asPaused)
		created["pausedAt"] = &types.AttributeValueMemberS{Value: formatTime(t.PausedAt)}
		if t.PauseReason != "" {
			created["pauseReason"] = &types.AttributeValueMemberS{Value: t.PauseReason}
		}
		stored, _, err := s.put(ctx, t.ID, created, "attribute_not_exists(#createdAt)")
		if !errors.As(err, &ccf) {
			return stored, err == nil, err
		}
	}
	for _, paused := range []bool{false, true, false} {
		item, cond := av, "attribute_not_exists(#pausedAt)"
		if paused {
			item, cond = asPaused, "attribute_exists(#pausedAt)"
		}
		stored, created, err := s.put(ctx, t.ID, item, cond)
		if errors.As(err, &ccf) {
			continue // paused or resumed meanwhile: the other form
		}
		return stored, created, err
	}
	return nil, false, fmt.Errorf("put timer %s: paused and resumed while being written", t.ID)
}

// put writes av as timer id on cond, which may name #pausedAt and
// #createdAt; an attribute of optionalAttrs that av lacks is removed.
func (s *Store) put(ctx context.Context, id string, av map[string]types.AttributeValue, cond string) (*Timer, bool, error) {
	names := map[string]string{"#createdAt": "createdAt", "#version": "version"}
	values := map[string]types.AttributeValue{
		":createdAt": av["createdAt"],
		":zero":      &types.AttributeValueMemberN{Value: "0"},
		":one":       &types.AttributeValueMemberN{Value: "1"},
	}
	sets := []string{"#createdAt = if_not_exists(#createdAt, :createdAt)", "#version = if_not_exists(#version, :zero) + :one"}
	keys := make([]string, 0, len(av))
	for k := range av {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable expression reads better in logs and tests
	for _, k := range keys {
		if k == attrPK || k == attrSK || k == "createdAt" || k == "version" {
			continue
		}
		names["#"+k] = k
		values[":"+k] = av[k]
		sets = append(sets, "#"+k+" = :"+k)
	}
	expr := "SET " + strings.Join(sets, ", ")
	var removes []string
	for _, k := range optionalAttrs {
		if _, ok := av[k]; !ok {
			names["#"+k] = k
			removes = append(removes, "#"+k)
		}
	}
	if len(removes) > 0 {
		expr += " REMOVE " + strings.Join(removes, ", ")
	}
	names["#pausedAt"] = "pausedAt"
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.Table,
		Key:                       timerKey(id),
		UpdateExpression:          &expr,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("put timer %s: %w", id, err)
	}
	stored, err := fromItem(out.Attributes)
	if err != nil {
		return nil, false, err
	}
	return stored, stored.Version == 1, nil
}

// Delete removes the timer with id, or returns an ENOTFOUND error.
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           &s.Table,
		Key:                 timerKey(id),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return Errorf(ENOTFOUND, "timer %s not found", id)
	}
	if err != nil {
		return fmt.Errorf("delete timer %s: %w", id, err)
	}
	return nil
}

// Due calls page with each page of timers in shard whose next occurrence is
// at or before until, oldest first. Pages are handed over one at a time so
// memory does not grow with the number of due timers.
func (s *Store) Due(ctx context.Context, shard string, until time.Time, page func([]*Timer) error) error {
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(DueIndex),
		KeyConditionExpression: aws.String("shardId = :shard AND nextFireAt <= :until"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard": &types.AttributeValueMemberS{Value: shard},
			":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(until.Unix(), 10)},
		},
	}
	if s.PageLimit > 0 {
		in.Limit = aws.Int32(s.PageLimit)
	}
	return s.queryPages(ctx, in, "due timers in "+shard, page)
}

// queryPages runs a query page by page, handing each page's timers to
// page, so that memory does not grow with the result.
func (s *Store) queryPages(ctx context.Context, in *dynamodb.QueryInput, what string, page func([]*Timer) error) error {
	p := dynamodb.NewQueryPaginator(s.DB, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s: %w", what, err)
		}
		timers, err := decodeTimers(out.Items)
		if err != nil {
			return err
		}
		if err := page(timers); err != nil {
			return err
		}
	}
	return nil
}

// decodeTimers decodes a page of timer items.
func decodeTimers(items []map[string]types.AttributeValue) ([]*Timer, error) {
	timers := make([]*Timer, 0, len(items))
	for _, av := range items {
		t, err := fromItem(av)
		if err != nil {
			return nil, err
		}
		timers = append(timers, t)
	}
	return timers, nil
}

// Step is one timer's move in a sweep: from the occurrence it was read
// with (Timer.NextFireAt, at Timer.Version) to Next, zero when none is left.
// Missed is set when that occurrence was skipped rather than sent, because
// it was later than the timer's catch-up window.
type Step struct {
	Timer  *Timer
	Next   time.Time
	Missed bool
	// SweptAt is when the sweep skipped a missed occurrence, for its
	// history record.
	SweptAt time.Time
}

// StepOutcome is what became of one Step.
type StepOutcome int

// Step outcomes.
const (
	StepApplied  StepOutcome = iota // the timer moved on
	StepConflict                    // the timer changed since it was read; the other writer wins
	StepFailed                      // not written (throttled or failing after retries); the next sweep retries it
)

// maxTransactItems is DynamoDB's limit on one TransactWriteItems call.
const maxTransactItems = 100

// Advance applies up to 100 steps in one TransactWriteItems call, each
// conditional on the timer still having the occurrence and version it was
// read with: a replaced, deleted or already advanced timer is left alone.
// DynamoDB has no conditional BatchWriteItem; a transaction is how a batch
// of writes stays conditional. One failed condition cancels the whole
// transaction, so the cancelled steps that did not fail themselves are
// tried again without the ones that did. It returns one outcome per step.
func (s *Store) Advance(ctx context.Context, steps []Step) ([]StepOutcome, error) {
	if len(steps) > maxTransactItems {
		return nil, fmt.Errorf("advance: %d steps; at most %d per call", len(steps), maxTransactItems)
	}
	out := make([]StepOutcome, len(steps))
	pending := make([]int, len(steps))
	for i := range steps {
		pending[i] = i
		out[i] = StepFailed // until shown otherwise
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		// Each step's conditional write, and for a missed occurrence its
		// history record; owner[k] is the pending step item k belongs to.
		items := make([]types.TransactWriteItem, 0, len(pending))
		var owner []int
		for j, i := range pending {
			items, owner = append(items, s.stepItem(steps[i])), append(owner, j)
			if steps[i].Missed {
				o := Occurrence{TimerID: steps[i].Timer.ID, At: steps[i].Timer.NextFireAt}
				items, owner = append(items, s.missedItem(o, steps[i].SweptAt)), append(owner, j)
			}
		}
		if len(items) > maxTransactItems {
			return out, fmt.Errorf("advance: %d writes; at most %d per call", len(items), maxTransactItems)
		}
		_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			for _, i := range pending {
				out[i] = StepApplied
			}
			return out, nil
		}
		var (
			tce *types.TransactionCanceledException
			re  *awshttp.ResponseError
		)
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 && attempt < 4 {
			// A fault on the service's side, which the SDK's own retries
			// did not outlast: the whole transaction, again, later.
			if err := sleepCtx(ctx, backoff(attempt+2)); err != nil {
				return out, err
			}
			continue
		}
		if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) {
			return out, fmt.Errorf("advance %d timers: %w", len(pending), err)
		}
		// A step's fate is its items' worst: a failed condition is a
		// conflict; any other reason, a retry; none, cancelled only because
		// another step failed, so again.
		conflict := make([]bool, len(pending))
		contended := make([]bool, len(pending))
		for k, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				conflict[owner[k]] = true
			case "", "None":
			default: // TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded, ...
				contended[owner[k]] = true
			}
		}
		var again []int
		retry := false
		for j, i := range pending {
			switch {
			case conflict[j]:
				out[i] = StepConflict
			case contended[j]:
				again, retry = append(again, i), true
			default:
				again = append(again, i)
			}
		}
		if retry {
			if attempt >= 4 {
				return out, fmt.Errorf("advance %d timers: still contended after %d attempts: %w", len(again), attempt+1, err)
			}
			if err := sleepCtx(ctx, backoff(attempt)); err != nil {
				return out, err
			}
		}
		pending = again
	}
	return out, nil
}

// stepItem is the conditional write of one step: an update, or a delete
// for a deleteAfterCompletion timer whose last occurrence was missed. One
// whose last occurrence was sent is kept, completed, for the invoker to
// delete after delivering it (DeleteCompleted).
func (s *Store) stepItem(st Step) types.TransactWriteItem {
	t := st.Timer
	values := map[string]types.AttributeValue{
		":old":     &types.AttributeValueMemberN{Value: strconv.FormatInt(t.NextFireAt.Unix(), 10)},
		":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Version, 10)},
	}
	const cond = "nextFireAt = :old AND version = :version"
	if st.Next.IsZero() && t.DeleteAfterCompletion && st.Missed {
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName: &s.Table, Key: timerKey(t.ID), ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}}
	}
	set := []string{}
	expr := ""
	if !st.Next.IsZero() {
		set = append(set, "nextFireAt = :next")
		values[":next"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(st.Next.Unix(), 10)}
	}
	if st.Missed {
		set = append(set, "missedCount = if_not_exists(missedCount, :zero) + :one", "lastMissedAt = :old")
		values[":zero"] = &types.AttributeValueMemberN{Value: "0"}
		values[":one"] = &types.AttributeValueMemberN{Value: "1"}
	}
	if len(set) > 0 {
		expr = "SET " + strings.Join(set, ", ")
	}
	if st.Next.IsZero() {
		expr += " REMOVE nextFireAt"
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.Table, Key: timerKey(t.ID), UpdateExpression: aws.String(strings.TrimSpace(expr)),
		ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
	}}
}

// leaseKey is the item that leases a shard to one sweep. Timer ids cannot
// contain '#', so it never collides with a timer.
func leaseKey(shard string) map[string]types.AttributeValue { return itemKey(pkLease+shard, skLease) }

// Lease gives shard to owner until now+ttl, unless another sweep holds an
// unexpired lease or the sweep of eventID already completed it (EventBridge
// can deliver one scheduled event twice). It reports whether owner got it.
func (s *Store) Lease(ctx context.Context, shard, owner, eventID string, now time.Time, ttl time.Duration) (bool, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &s.Table,
		Key:              leaseKey(shard),
		UpdateExpression: aws.String("SET leaseOwner = :owner, leaseUntil = :until"),
		ConditionExpression: aws.String("(attribute_not_exists(leaseUntil) OR leaseUntil < :now) AND " +
			"(attribute_not_exists(lastEventId) OR lastEventId <> :event)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: owner},
			":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":event": &types.AttributeValueMemberS{Value: eventID},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", shard, err)
	}
	return true, nil
}

// Release ends owner's lease on shard. A completed sweep records its event
// and instant, so that the same event delivered again does nothing.
func (s *Store) Release(ctx context.Context, shard, owner, eventID string, completed bool, now time.Time) error {
	expr := "REMOVE leaseOwner, leaseUntil"
	values := map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}}
	if completed {
		expr = "SET lastEventId = :event, completedAt = :now " + expr
		values[":event"] = &types.AttributeValueMemberS{Value: eventID}
		values[":now"] = &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.Table,
		Key:                       leaseKey(shard),
		UpdateExpression:          &expr,
		ConditionExpression:       aws.String("leaseOwner = :owner"),
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // the lease expired and another sweep took it: nothing of ours to release
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", shard, err)
	}
	return nil
}

// backoff is the wait before retry attempt+1: exponential from 50 ms,
// capped at 2 s, with full jitter so that retries do not march in step.
func backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<attempt, 2*time.Second)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DeleteCompleted deletes timer id once its last occurrence has its final
// outcome (deleteAfterCompletion), unless it was replaced since (version)
// or has an occurrence again. Already gone is no error. Its occurrence
// items, its history, stay until their TTL.
func (s *Store) DeleteCompleted(ctx context.Context, id string, version int64) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           &s.Table,
		Key:                 timerKey(id),
		ConditionExpression: aws.String("version = :version AND attribute_not_exists(nextFireAt)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(version, 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("delete completed timer %s: %w", id, err)
	}
	return nil
}

// groupKey is the item that records a group's pause, so that a timer
// created in a paused group is created paused. Groups cannot contain '#'.
func groupKey(group string) map[string]types.AttributeValue { return itemKey(pkGroup+group, skGroup) }

// PauseGroup records that group is paused, keeping the first pause's
// instant and taking the new reason, if any.
func (s *Store) PauseGroup(ctx context.Context, group, reason string, now time.Time) error {
	expr := "SET pausedAt = if_not_exists(pausedAt, :now)"
	values := map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)}}
	if reason != "" {
		expr += ", pauseReason = :reason"
		values[":reason"] = &types.AttributeValueMemberS{Value: reason}
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: groupKey(group),
		UpdateExpression: &expr, ExpressionAttributeValues: values})
	if err != nil {
		return fmt.Errorf("pause group %s: %w", group, err)
	}
	return nil
}

// ResumeGroup records that group runs again.
func (s *Store) ResumeGroup(ctx context.Context, group string) error {
	if _, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.Table, Key: groupKey(group)}); err != nil {
		return fmt.Errorf("resume group %s: %w", group, err)
	}
	return nil
}

// GroupPause returns when group was paused and why, or a nil instant while
// it runs.
func (s *Store) GroupPause(ctx context.Context, group string) (*time.Time, string, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: groupKey(group), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, "", fmt.Errorf("read group %s: %w", group, err)
	}
	var g struct {
		PausedAt    string `dynamodbav:"pausedAt"`
		PauseReason string `dynamodbav:"pauseReason"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &g); err != nil {
		return nil, "", fmt.Errorf("decode group %s: %w", group, err)
	}
	return parseTime(g.PausedAt), g.PauseReason, nil
}

// Pause stops timer id from firing: it leaves the due index, and the
// invoker drops occurrences already on their way. Pausing again keeps the
// first pause's instant and takes the new reason, if any.
func (s *Store) Pause(ctx context.Context, id, reason string, now time.Time) (*Timer, error) {
	expr := "SET pausedAt = if_not_exists(pausedAt, :now) REMOVE nextFireAt"
	values := map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)}}
	if reason != "" {
		expr = "SET pausedAt = if_not_exists(pausedAt, :now), pauseReason = :reason REMOVE nextFireAt"
		values[":reason"] = &types.AttributeValueMemberS{Value: reason}
	}
	return s.update(ctx, id, expr, "attribute_exists(pk)", values)
}

// Resume lets a paused timer fire again from its first occurrence after
// now: what fell while it was paused is skipped, not caught up. Resuming a
// running timer changes nothing.
func (s *Store) Resume(ctx context.Context, id string, now time.Time, zone func(string) (*time.Location, error)) (*Timer, error) {
	for range 3 {
		t, err := s.Get(ctx, id)
		if err != nil || t.PausedAt == nil {
			return t, err
		}
		sched, err := t.Schedule(zone)
		if err != nil {
			return nil, err
		}
		values := map[string]types.AttributeValue{
			":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Version, 10)},
		}
		expr := "REMOVE pausedAt, pauseReason"
		if next, ok := sched.Next(now); ok {
			expr = "SET nextFireAt = :next " + expr
			values[":next"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(next.Unix(), 10)}
		}
		t, err = s.update(ctx, id, expr, "attribute_exists(pausedAt) AND version = :version", values)
		if ErrorCode(err) != ECONFLICT {
			return t, err
		}
	}
	return nil, Errorf(ECONFLICT, "timer %s kept changing while it was resumed; try again", id)
}

// update applies one conditional update to timer id and returns it as
// stored. A failed condition is ECONFLICT, or ENOTFOUND when the timer is
// gone.
func (s *Store) update(ctx context.Context, id, expr, cond string, values map[string]types.AttributeValue) (*Timer, error) {
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: timerKey(id), UpdateExpression: &expr, ConditionExpression: &cond,
		ExpressionAttributeValues: values, ReturnValues: types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if len(ccf.Item) == 0 {
			return nil, Errorf(ENOTFOUND, "timer %s not found", id)
		}
		return nil, Errorf(ECONFLICT, "timer %s changed meanwhile", id)
	}
	if err != nil {
		return nil, fmt.Errorf("update timer %s: %w", id, err)
	}
	return fromItem(out.Attributes)
}

// Group calls page with each page of the timers in group, by id.
func (s *Store) Group(ctx context.Context, group string, page func([]*Timer) error) error {
	return s.queryPages(ctx, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		IndexName:                 aws.String(GroupIndex),
		KeyConditionExpression:    aws.String("timerGroup = :g"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: group}},
	}, "group "+group, page)
}

// stateFilters select timers by their derived state, in DynamoDB terms.
// GroupIndex holds timers only, so no filter has other items to drop.
var stateFilters = map[string]string{
	"":             "",
	StateActive:    "attribute_exists(nextFireAt) AND attribute_not_exists(pausedAt)",
	StatePaused:    "attribute_exists(pausedAt)",
	StateCompleted: "attribute_not_exists(nextFireAt) AND attribute_not_exists(pausedAt)",
}

// List returns one page of up to limit timers, those of group or else all
// of them, filtered by state, and the cursor of the next page (nil when
// there is none). It reads GroupIndex, which holds timers and nothing
// else: a group's partition of it, or a scan of the whole index. Every
// page but the last holds limit timers: when the state filter drops some,
// List reads on until it has limit.
//
// A cursor is {"id": ..., "group": ...}: the id and group ("" for none)
// of the last timer read, from which the index's full key follows.
func (s *Store) List(ctx context.Context, group, state string, limit int32, cursor map[string]string) ([]*Timer, map[string]string, error) {
	filter, ok := stateFilters[state]
	if !ok {
		return nil, nil, Errorf(EINVALID, "state must be active, paused or completed")
	}
	start, err := listStart(group, cursor)
	if err != nil {
		return nil, nil, err
	}
	var timers []*Timer
	for {
		items, last, err := s.listPage(ctx, group, filter, limit-int32(len(timers)), start)
		if err != nil {
			return nil, nil, err
		}
		page, err := decodeTimers(items)
		if err != nil {
			return nil, nil, err
		}
		timers = append(timers, page...)
		if len(last) == 0 {
			return timers, nil, nil
		}
		if int32(len(timers)) >= limit {
			return timers, listCursorOf(last), nil
		}
		start = last
	}
}

// listPage reads up to limit items of GroupIndex from start: a query of
// group's partition, or a scan of the whole index.
func (s *Store) listPage(ctx context.Context, group, filter string, limit int32, start map[string]types.AttributeValue) ([]map[string]types.AttributeValue, map[string]types.AttributeValue, error) {
	var f *string
	if filter != "" {
		f = &filter
	}
	if group != "" {
		out, err := s.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.Table, IndexName: aws.String(GroupIndex), Limit: &limit, ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("timerGroup = :g"),
			FilterExpression:          f,
			ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: group}},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list group %s: %w", group, err)
		}
		return out.Items, out.LastEvaluatedKey, nil
	}
	out, err := s.DB.Scan(ctx, &dynamodb.ScanInput{
		TableName: &s.Table, IndexName: aws.String(GroupIndex), Limit: &limit, ExclusiveStartKey: start, FilterExpression: f,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list timers: %w", err)
	}
	return out.Items, out.LastEvaluatedKey, nil
}

// listStart is the ExclusiveStartKey a cursor stands for: GroupIndex's key
// and the table's, all four of which a timer's id and group determine.
// A cursor of another shape is refused, since DynamoDB would answer it
// with a ValidationException (a 500 here).
func listStart(group string, cursor map[string]string) (map[string]types.AttributeValue, error) {
	if len(cursor) == 0 {
		return nil, nil
	}
	id, g := cursor["id"], cursor["group"]
	bad := len(cursor) != 2 || validateID(id) != nil || (g != "" && validateGroup(g) != nil) || (group != "" && g != group)
	if _, ok := cursor["group"]; bad || !ok {
		return nil, Errorf(EINVALID, "cursor is malformed; pass back the cursor of the previous page")
	}
	key := timerKey(id)
	key["id"] = &types.AttributeValueMemberS{Value: id}
	key[attrTimerGroup] = &types.AttributeValueMemberS{Value: cmp.Or(g, noGroup)}
	return key, nil
}

// listCursorOf is the cursor of the page that starts after last, an item
// key of GroupIndex: the timer's id and group, no internal key.
func listCursorOf(last map[string]types.AttributeValue) map[string]string {
	var id, g string
	if v, ok := last["id"].(*types.AttributeValueMemberS); ok {
		id = v.Value
	}
	if v, ok := last[attrTimerGroup].(*types.AttributeValueMemberS); ok && v.Value != noGroup {
		g = v.Value
	}
	return map[string]string{"id": id, "group": g}
}
