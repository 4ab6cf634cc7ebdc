package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
//	group pause          #group#<group>       group
//	link (due.go)        #due#<minute>#<part> <timer id>
//	sweep state          #sweep               sweep
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

	// Every kind of item, by its keys (README.md, "Table and key design").
	// A timer: pk its id; its occurrences share its partition.
	skTimer      = "timer"
	skOccurrence = "occ#" // + occurrenceInstant(at), + "#manual" for a fire by hand
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
		PausedAt:              formatTime(t.PausedAt),
		PauseReason:           t.PauseReason,
		MissedCount:           t.MissedCount,
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

// Put creates or replaces t and hands it on, in one transaction: the
// timer, and the link of its first occurrence that is the sweeper's to
// send (see due.go). It keeps the original createdAt, increments version,
// and returns the timer as stored, whether it was created, and the
// occurrences within shortNotice of now, which the caller sends itself.
// t.CreatedAt and t.Version are ignored on input.
//
// A paused timer stays paused: the replacement is stored without a link,
// which Resume writes. Whether it is paused is decided by the write's own
// condition, not only by the read before it. t.PausedAt set (its group is
// paused) creates a new timer paused, with t.PauseReason; an existing
// timer keeps its own state.
func (s *Store) Put(ctx context.Context, t *Timer, now time.Time) (*Timer, bool, []time.Time, error) {
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return nil, false, nil, err
	}
	for range 3 {
		old, err := s.Get(ctx, t.ID)
		if err != nil && ErrorCode(err) != ENOTFOUND {
			return nil, false, nil, err
		}
		stored := *t
		stored.Version, stored.PausedAt, stored.PauseReason, stored.DueFrom = 1, t.PausedAt, t.PauseReason, now
		cond := "attribute_not_exists(pk)"
		values := map[string]types.AttributeValue{}
		if old != nil {
			stored.Version, stored.CreatedAt = old.Version+1, old.CreatedAt
			stored.PausedAt, stored.PauseReason = old.PausedAt, old.PauseReason
			stored.MissedCount, stored.LastMissedAt = old.MissedCount, old.LastMissedAt
			cond = "version = :version AND attribute_not_exists(pausedAt)"
			if old.PausedAt != nil {
				cond = "version = :version AND attribute_exists(pausedAt)"
			}
			values[":version"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(old.Version, 10)}
		}
		var oldSlots []DueSlot
		if old != nil {
			oldSlots = old.Slots
		}
		hand, direct, err := s.handOnItems(ctx, &stored, sched, now.Add(-time.Nanosecond), now, oldSlots)
		if err != nil {
			return nil, false, nil, err
		}
		item, err := s.timerItem(&stored) // with the slots handOnItems set
		if err != nil {
			return nil, false, nil, err
		}
		put := &types.Put{TableName: &s.Table, Item: item, ConditionExpression: &cond}
		if len(values) > 0 {
			put.ExpressionAttributeValues = values
		}
		ok, err := s.transact(ctx, t.ID, append([]types.TransactWriteItem{{Put: put}}, hand...))
		if err != nil {
			return nil, false, nil, err
		}
		if !ok {
			continue // replaced, paused or resumed meanwhile: read it again
		}
		return &stored, old == nil, direct, nil
	}
	return nil, false, nil, Errorf(ECONFLICT, "timer %s kept changing while it was written; try again", t.ID)
}

// zoneOrUTC is zone name's location, UTC when it cannot be loaded (the API
// validated it).
func zoneOrUTC(name string) *time.Location {
	if loc, err := loadZone(name); err == nil {
		return loc
	}
	return time.UTC
}

// handOnItems are the writes, beside the timer's own, that hand timer t on
// from from (exclusive) at now, in the timer's transaction: its slot
// entries when its schedule repeats within a week (PlanDue), or else the
// link of its first occurrence that is the sweeper's, and the deletes of
// the old slots it has no longer. It returns them with the occurrences
// within short notice, which the caller sends itself, and sets t.Slots. A
// paused timer gets none: its old slots are deleted.
func (s *Store) handOnItems(ctx context.Context, t *Timer, sched Schedule, from, now time.Time, old []DueSlot) ([]types.TransactWriteItem, []time.Time, error) {
	var (
		items  []types.TransactWriteItem
		direct []time.Time
		link   *DueEntry
	)
	t.Slots = nil
	if t.PausedAt == nil {
		direct, link = handOn(dueEntryOf(t, time.Time{}, now), sched, from, now)
		if slots, ok := PlanDue(sched, now); ok && link != nil {
			t.Slots, link = slots, nil
		}
	}
	if err := s.usePeriods(ctx, t.Slots); err != nil {
		return nil, nil, err
	}
	if err := s.startSweep(ctx, link != nil || len(t.Slots) > 0, now); err != nil {
		return nil, nil, err
	}
	for _, sl := range t.Slots {
		item, err := slotItem(t, sl, now)
		if err != nil {
			return nil, nil, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: item}})
	}
	for _, sl := range old {
		if !slices.Contains(t.Slots, sl) {
			items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &s.Table, Key: slotKey(sl, t.ID)}})
		}
	}
	if link != nil {
		l, err := linkItem(*link)
		if err != nil {
			return nil, nil, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: l}})
	}
	return items, direct, nil
}

// slotDeletes are the deletes of t's slot entries.
func (s *Store) slotDeletes(t *Timer) []types.TransactWriteItem {
	var items []types.TransactWriteItem
	for _, sl := range t.Slots {
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &s.Table, Key: slotKey(sl, t.ID)}})
	}
	return items
}

// transact runs items, all hanging on the condition of timer id's own
// write (item 0): it reports false when that condition failed (the timer
// changed meanwhile), for the caller to read it again.
func (s *Store) transact(ctx context.Context, id string, items []types.TransactWriteItem) (bool, error) {
	_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write timer %s: %w", id, err)
	}
	return true, nil
}

// versionIs is the condition that timer t is still at its version.
func versionIs(t *Timer) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Version, 10)}}
}

// timerItem is the DynamoDB item of t.
func (s *Store) timerItem(t *Timer) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return nil, fmt.Errorf("encode timer %s: %w", t.ID, err)
	}
	return av, nil
}

// Delete removes the timer with id and its slot entries in one
// transaction, or returns an ENOTFOUND error. Its link, if it has one,
// ends when the invoker drops the occurrence before it.
func (s *Store) Delete(ctx context.Context, id string) error {
	for range 3 {
		t, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if ok, err := s.deleteTimer(ctx, t); ok || err != nil {
			return err
		}
	}
	return Errorf(ECONFLICT, "timer %s kept changing while it was deleted; try again", id)
}

// deleteTimer deletes t, at its version, with its slot entries.
func (s *Store) deleteTimer(ctx context.Context, t *Timer) (bool, error) {
	return s.transact(ctx, t.ID, append([]types.TransactWriteItem{{Delete: &types.Delete{
		TableName: &s.Table, Key: timerKey(t.ID), ConditionExpression: aws.String("version = :version"),
		ExpressionAttributeValues: versionIs(t),
	}}}, s.slotDeletes(t)...))
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

// DeleteCompleted deletes timer id once its last occurrence has its final
// outcome (deleteAfterCompletion), unless it was replaced since (version). Already gone is no error. Its occurrence
// items, its history, stay until their TTL.
func (s *Store) DeleteCompleted(ctx context.Context, id string, version int64) error {
	t, err := s.Get(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	if t.Version != version {
		return nil // replaced: the replacement has occurrences of its own
	}
	_, err = s.deleteTimer(ctx, t)
	return err
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

// Pause stops timer id from firing: the invoker drops its occurrences
// already on their way, and ends its chain of links (see due.go). Pausing
// again keeps the first pause's instant and takes the new reason, if any.
//
// A running timer's slot entries are deleted in the same transaction, so
// that the sweeper stops reading them.
func (s *Store) Pause(ctx context.Context, id, reason string, now time.Time) (*Timer, error) {
	expr := "SET pausedAt = if_not_exists(pausedAt, :now)"
	values := map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)}}
	if reason != "" {
		expr += ", pauseReason = :reason"
		values[":reason"] = &types.AttributeValueMemberS{Value: reason}
	}
	for range 3 {
		t, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if t.PausedAt != nil || len(t.Slots) == 0 {
			return s.update(ctx, id, expr, "attribute_exists(pk)", values)
		}
		values[":version"] = versionIs(t)[":version"]
		ok, err := s.transact(ctx, id, append([]types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.Table, Key: timerKey(id), UpdateExpression: aws.String(expr + " REMOVE slots"),
			ConditionExpression: aws.String("version = :version AND attribute_not_exists(pausedAt)"), ExpressionAttributeValues: values,
		}}}, s.slotDeletes(t)...))
		if err != nil {
			return nil, err
		}
		if ok {
			return s.Get(ctx, id)
		}
		delete(values, ":version")
	}
	return nil, Errorf(ECONFLICT, "timer %s kept changing while it was paused; try again", id)
}

// Resume lets a paused timer fire again from its first occurrence after
// now: what fell while it was paused is skipped, not caught up. In the
// same transaction it hands the timer on, as Put does, and returns the
// occurrences within shortNotice of now for the caller to send. Resuming
// a running timer changes nothing.
func (s *Store) Resume(ctx context.Context, id string, now time.Time, zone func(string) (*time.Location, error)) (*Timer, []time.Time, error) {
	for range 3 {
		t, err := s.Get(ctx, id)
		if err != nil || t.PausedAt == nil {
			return t, nil, err
		}
		sched, err := t.Schedule(zone)
		if err != nil {
			return nil, nil, err
		}
		resumed := *t
		resumed.PausedAt, resumed.PauseReason, resumed.DueFrom = nil, "", now.Add(time.Nanosecond)
		hand, direct, err := s.handOnItems(ctx, &resumed, sched, now, now, nil)
		if err != nil {
			return nil, nil, err
		}
		expr := "SET dueFrom = :from REMOVE pausedAt, pauseReason, slots"
		values := versionIs(t)
		values[":from"] = &types.AttributeValueMemberS{Value: resumed.DueFrom.UTC().Format(time.RFC3339Nano)}
		if len(resumed.Slots) > 0 {
			expr = "SET dueFrom = :from, slots = :slots REMOVE pausedAt, pauseReason"
			item, err := s.timerItem(&resumed)
			if err != nil {
				return nil, nil, err
			}
			values[":slots"] = item["slots"]
		}
		ok, err := s.transact(ctx, id, append([]types.TransactWriteItem{{Update: &types.Update{
			TableName: &s.Table, Key: timerKey(id), UpdateExpression: &expr,
			ConditionExpression: aws.String("attribute_exists(pausedAt) AND version = :version"), ExpressionAttributeValues: values,
		}}}, hand...))
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue // changed meanwhile: read it again
		}
		return &resumed, direct, nil
	}
	return nil, nil, Errorf(ECONFLICT, "timer %s kept changing while it was resumed; try again", id)
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
// A timer's schedule ends at endsAt, when it has an end: the timer item
// changes at no firing, so "completed" is read from that.
var stateFilters = map[string]string{
	"":             "",
	StateActive:    "attribute_not_exists(pausedAt) AND (attribute_not_exists(endsAt) OR endsAt >= :now)",
	StatePaused:    "attribute_exists(pausedAt)",
	StateCompleted: "attribute_not_exists(pausedAt) AND endsAt < :now",
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
func (s *Store) List(ctx context.Context, group, state string, limit int32, cursor map[string]string, now time.Time) ([]*Timer, map[string]string, error) {
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
		items, last, err := s.listPage(ctx, group, filter, now, limit-int32(len(timers)), start)
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
func (s *Store) listPage(ctx context.Context, group, filter string, now time.Time, limit int32, start map[string]types.AttributeValue) ([]map[string]types.AttributeValue, map[string]types.AttributeValue, error) {
	var f *string
	values := map[string]types.AttributeValue{}
	if filter != "" {
		f = &filter
		if strings.Contains(filter, ":now") {
			values[":now"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}
		}
	}
	if group != "" {
		values[":g"] = &types.AttributeValueMemberS{Value: group}
		out, err := s.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: &s.Table, IndexName: aws.String(GroupIndex), Limit: &limit, ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("timerGroup = :g"),
			FilterExpression:          f,
			ExpressionAttributeValues: values,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list group %s: %w", group, err)
		}
		return out.Items, out.LastEvaluatedKey, nil
	}
	if len(values) == 0 {
		values = nil // DynamoDB refuses an empty map
	}
	out, err := s.DB.Scan(ctx, &dynamodb.ScanInput{
		TableName: &s.Table, IndexName: aws.String(GroupIndex), Limit: &limit, ExclusiveStartKey: start, FilterExpression: f,
		ExpressionAttributeValues: values,
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
