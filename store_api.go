package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The API's calls: the timers it writes (PUT, pause, resume, DELETE, a
// group's pause), the lists it reads, and a timer with its history. The
// sweeper's calls are in due.go and due_state.go, the invoker's in
// occurrence.go; the table's layout and the item codec in store.go.

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

// Group calls page with each page of the timers in group, by id.
func (s *Store) Group(ctx context.Context, group string, page func([]*Timer) error) error {
	return s.queryPages(ctx, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		IndexName:                 aws.String(GroupIndex),
		KeyConditionExpression:    aws.String("timerGroup = :g"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberS{Value: group}},
	}, "group "+group, page)
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

// Show returns timer id with its lastFire, the outcome of its newest
// delivery attempt, derived from its occurrence items (the invoker writes
// nothing on the timer item): one query, which reads the timer item (its
// sort key, "timer", sorts after every "occ#") and its newest occurrences.
func (s *Store) Show(ctx context.Context, id string) (*Timer, error) {
	out, err := s.DB.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.Table, ConsistentRead: aws.Bool(true), ScanIndexForward: aws.Bool(false), Limit: aws.Int32(10),
		KeyConditionExpression: aws.String("pk = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": &types.AttributeValueMemberS{Value: id},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("get timer %s: %w", id, err)
	}
	if len(out.Items) == 0 {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	if sk, _ := out.Items[0][attrSK].(*types.AttributeValueMemberS); sk == nil || sk.Value != skTimer {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id) // its history outlives it, until the TTL
	}
	t, err := fromItem(out.Items[0])
	if err != nil {
		return nil, err
	}
	for _, av := range out.Items[1:] {
		var f LastFire
		if err := attributevalue.UnmarshalMap(av, &f); err != nil {
			return nil, fmt.Errorf("decode the history of %s: %w", id, err)
		}
		switch f.Outcome {
		case OutcomeDelivered, OutcomeRetrying, OutcomeFailed:
			t.LastFire = &f
		}
		if t.LastFire != nil {
			break
		}
	}
	return t, nil
}

// History returns up to limit of timer id's latest occurrences with an
// outcome, newest first: one query of the timer's own item collection.
func (s *Store) History(ctx context.Context, id string, limit int32) ([]LastFire, error) {
	h := []LastFire{}
	err := s.occurrences(ctx, id, limit, func(f LastFire) bool {
		h = append(h, f)
		return len(h) < int(limit)
	})
	return h, err
}

// occurrences calls each with timer id's occurrences that have an
// outcome, newest first, until it returns false. Pages of limit items.
func (s *Store) occurrences(ctx context.Context, id string, limit int32, each func(LastFire) bool) error {
	p := dynamodb.NewQueryPaginator(s.DB, &dynamodb.QueryInput{
		TableName: &s.Table, ConsistentRead: aws.Bool(true), ScanIndexForward: aws.Bool(false), Limit: &limit,
		KeyConditionExpression: aws.String("pk = :id AND begins_with(sk, :occ)"),
		FilterExpression:       aws.String("attribute_exists(outcome)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id":  &types.AttributeValueMemberS{Value: id},
			":occ": &types.AttributeValueMemberS{Value: skOccurrence},
		},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("read the history of %s: %w", id, err)
		}
		for _, av := range out.Items {
			var f LastFire
			if err := attributevalue.UnmarshalMap(av, &f); err != nil {
				return fmt.Errorf("decode the history of %s: %w", id, err)
			}
			if !each(f) {
				return nil
			}
		}
	}
	return nil
}
