package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table's layout, version 2 (LayoutVersion). One table, keyed by pk
// (partition) and sk (sort), holds every kind of item; each kind is named
// here, and README.md's "Table and key design" section draws them.
//
//	item                   pk                                  sk
//	timer                  <timer id>                          timer
//	occurrence             <timer id>                          occ#<instant>[#manual]
//	slot entry (due.go)    #slot#<period>#<slot/60>#<part>     <slot%60>#<timer id>
//	link (due.go)          #due#<unix hour>#<part>             <minute of the hour>#<timer id>
//	slot periods (due.go)  #periods                            periods
//	sweep state            #sweep                              sweep
//	group pause            #group#<group>                      group
//	limit (limits.go)      #limits                             <destination key>
//	destination state      #limit#<destination key>            state
//	calls in a second      #limit#<destination key>#<unix s>   second
//	run lease (overlap.go) <timer id>                          run
//
// A timer and its occurrences share one item collection, so a timer's
// history is a query of its own partition, with no index to write. An
// occurrence item is the claim, the settle and the history record of one
// occurrence at once. Timer ids and group names cannot contain '#', so no
// timer collides with the other kinds.
//
// This file holds the layout, the Store and the item codec. The calls are
// in files named for who makes them: the API's in store_api.go, the
// sweeper's in due.go (links, slots, buckets) and due_state.go (its lease
// and state), the invoker's in occurrence.go.
const (
	// LayoutVersion is stored on every timer item (attribute layout), so
	// that the next change of layout can find and migrate the old items.
	LayoutVersion = 2

	attrPK = "pk"
	attrSK = "sk"

	// Every kind of item, by its keys (README.md, "Table and key design").
	// A timer: pk its id; its occurrences share its partition.
	skTimer      = "timer"
	skOccurrence = "occ#" // + occurrenceInstant(at), + "#manual" for a fire by hand
	// A timer's run lease (overlap.go): pk its id. "run" sorts between
	// "occ#..." and "timer", so the timer stays its partition's last item.
	skRun = "run"
	// A group's pause.
	pkGroup = "#group#" // + group
	skGroup = "group"
	// A link (due.go): pkDue + Unix hour + "#" + part, with sort key the
	// minute of the hour (two digits), "#" and the timer id.
	pkDue = "#due#"
	// A slot entry (due.go): pkSlot + period + "#" + slot/60 + "#" + part,
	// with sort key slot%60 (two digits), "#" and the timer id.
	pkSlot = "#slot#"
	// The set of slot periods in use, which the sweeper reads.
	pkPeriods = "#periods"
	skPeriods = "periods"
	// The sweep's state: its lease, how far it has read, and the hours
	// whose partitions it raised (attributes "p" + Unix hour).
	pkSweep = "#sweep"
	skSweep = "sweep"
	// Destination limits (limits_store.go): every limit in one partition,
	// so that the list is one Query; and each destination's state item
	// (its slot counter, Retry-After block and in-flight leases), the one
	// item every invoker writes for that destination's calls.
	pkLimits = "#limits"
	pkDest   = "#limit#" // + destination key; + "#" + Unix second for a second's count of calls
	skDest   = "state"
	skSecond = "second"

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
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Store keeps timers, their occurrences and the due path in one DynamoDB
// table (the keys above), with GroupIndex for lists.
type Store struct {
	DB    dynamoAPI
	Table string
	// PageLimit caps the items of one bucket page. Default 0: DynamoDB's
	// own 1 MB pages.
	PageLimit int32

	// sweepStarted is set once this Store has made sure the sweep's state
	// exists (see startSweep).
	sweepStarted atomic.Bool
	// periods are the slot periods this Store has added (see usePeriods).
	periods sync.Map
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
	Overlap               string          `dynamodbav:"overlap,omitempty"`
	PauseAfterFailures    int             `dynamodbav:"pauseAfterFailures,omitempty"`
	SpreadSeconds         int             `dynamodbav:"spreadSeconds,omitempty"`
	// EndsAt is when the schedule ends, in Unix seconds (its endAt, or an
	// at() schedule's one instant), for the list's state filter: the
	// timer item changes at no firing.
	EndsAt int64 `dynamodbav:"endsAt,omitempty"`
	// DueFrom is Timer.DueFrom, to the nanosecond.
	DueFrom string `dynamodbav:"dueFrom,omitempty"`
	// Slots are Timer.Slots, each "period/slot".
	Slots     []string `dynamodbav:"slots,omitempty,stringset"`
	CreatedAt string   `dynamodbav:"createdAt"`
	UpdatedAt string   `dynamodbav:"updatedAt"`
	Version   int64    `dynamodbav:"version"`
}

// formatTime is t as the item stores it, RFC 3339 for people reading the
// console; "" for nil.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// parseTime reads an instant formatTime wrote; nil for "" or anything
// else unreadable, which no writer produces.
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

// toItem is the item form of t (see timerItem).
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
		Overlap:      t.Overlap,
		CreatedAt:    formatTime(&t.CreatedAt),
		UpdatedAt:    formatTime(&t.UpdatedAt),
		Version:      t.Version,

		DeleteAfterCompletion: t.DeleteAfterCompletion,
		Group:                 t.Group,
		CatchUpSeconds:        &t.CatchUpSeconds,
		PausedAt:              formatTime(t.PausedAt),
		PauseReason:           t.PauseReason,
		MissedCount:           t.MissedCount,
		PauseAfterFailures:    t.PauseAfterFailures,
		SpreadSeconds:         t.SpreadSeconds,
	}
	// Only a rate schedule has an anchor worth keeping.
	if strings.HasPrefix(t.ScheduleExpr, "rate(") {
		it.AnchorAt = formatTime(&t.Anchor)
	}
	if t.LastMissedAt != nil {
		it.LastMissedAt = t.LastMissedAt.Unix()
	}
	if !t.DueFrom.IsZero() {
		it.DueFrom = t.DueFrom.UTC().Format(time.RFC3339Nano)
	}
	for _, s := range t.Slots {
		it.Slots = append(it.Slots, fmt.Sprintf("%d/%d", s.Period, s.Slot))
	}
	if t.EndAt != nil {
		it.EndsAt = t.EndAt.Unix()
	}
	if at, ok := strings.CutPrefix(t.ScheduleExpr, "at("); ok {
		if ts, err := time.ParseInLocation("2006-01-02T15:04:05", strings.TrimSuffix(at, ")"), zoneOrUTC(t.Timezone)); err == nil {
			it.EndsAt = ts.Unix()
		}
	}
	return it
}

// fromItem decodes a timer item; one stored before the catch-up window
// existed gets the default window.
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
		Overlap:      it.Overlap,
		Version:      it.Version,

		DeleteAfterCompletion: it.DeleteAfterCompletion,
		Group:                 it.Group,
		PausedAt:              parseTime(it.PausedAt),
		PauseReason:           it.PauseReason,
		CatchUpSeconds:        DefaultCatchUpSeconds,
		MissedCount:           it.MissedCount,
		PauseAfterFailures:    it.PauseAfterFailures,
		SpreadSeconds:         it.SpreadSeconds,
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
	if d, err := time.Parse(time.RFC3339Nano, it.DueFrom); err == nil {
		t.DueFrom = d
	}
	for _, s := range it.Slots {
		var sl DueSlot
		if _, err := fmt.Sscanf(s, "%d/%d", &sl.Period, &sl.Slot); err == nil {
			t.Slots = append(t.Slots, sl)
		}
	}
	sort.Slice(t.Slots, func(i, j int) bool { return t.Slots[i].Slot < t.Slots[j].Slot })
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

// timerItem is the DynamoDB item of t.
func (s *Store) timerItem(t *Timer) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return nil, fmt.Errorf("encode timer %s: %w", t.ID, err)
	}
	return av, nil
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

// groupKey is the item that records a group's pause, so that a timer
// created in a paused group is created paused. Groups cannot contain '#'.
func groupKey(group string) map[string]types.AttributeValue { return itemKey(pkGroup+group, skGroup) }
