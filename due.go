package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The due path: how the sweeper finds what is due without an index.
// These are the sweeper's calls (Bucket, PutLinks, Missed, DeleteSlot,
// Periods), the invoker's one (DeleteLink: a stale timer's chain of
// links ends at its occurrence), and the items that the API writes in a
// timer's own transaction (store_api.go's handOnItems: links, slot
// entries, usePeriods). The sweep's lease and state are in due_state.go.
//
// Every UTC minute is a bucket: a timer's next occurrence is a link entry
// in its minute's bucket. A bucket partition holds an hour of them (the
// sort key starts with the minute), split over the hour's partitions by
// the timer's id, so that a sweep reads a range of minutes in one query per
// partition, and a sweep after a long outage reads its backlog by the hour.
// Whoever hands an occurrence on writes the link of the next one: the API
// (PUT, resume) and the sweeper (for each occurrence it sends or records
// missed). So a firing moves nothing in an index, and a link is one small
// put that DynamoDB's TTL deletes for free once it is past. Timers whose
// schedules repeat within a week need not even that: their slot entries,
// written once (PlanDue), stand for every occurrence.
//
// Partitions that follow the load. An hour has dueParts partitions until
// a sweep's link writes into it are throttled: the sweep then doubles the
// hour's partitions (up to maxDueParts), recording the count in the
// sweep's item under its lease before any link goes into the new ones
// (RaiseParts), and every later sweep reads the hour over that many
// (LeaseSweep). The count only goes up while the hour is ahead, and is
// forgotten once the sweeps are past it; a link names the count it was
// written with (DueEntry.Parts), so its partition can be found again.
// Writers that do not raise (the API) write over dueParts, which every
// count includes: no setting to change, none to get wrong.
//
// Short notice. An occurrence X of an entry written at W is the writer's to
// send, at once and with its delay, when X - W <= shortNotice; the sweeper
// sends only occurrences further out. A sweep reads a minute's bucket when
// the whole minute is within its look-ahead, so an entry written after that
// read has X - W below the look-ahead: the writer's. Neither misses an
// occurrence, and neither sends one the other sends.
const (
	// dueParts is the number of partitions of an hour's bucket (and of a
	// slot's) unless the sweeper raised it (see SweepState.Parts). A
	// partition key takes 1,000 write units and 3,000 read units a second:
	// 16 of them take 16,000 links written a second, and the sweeper reads
	// a million entries of ~150 bytes from them in about 3 s.
	dueParts = 16
	// maxDueParts bounds a raised bucket: 1,024 partitions take a million
	// links a second, and a sweep reads 1,024 queries a range.
	maxDueParts = 1024
	// shortNotice is how far from its writing an occurrence is sent by its
	// writer rather than the sweeper: the sweeper's look-ahead, plus a
	// margin for the writer's own request and clocks that differ a little.
	shortNotice = defaultLookahead + 30*time.Second
	// defaultLookahead is the sweeper's: a minute's bucket is read once the
	// whole minute is within it, so three minutes read each bucket at
	// least a minute before it begins, whenever in its minute EventBridge
	// starts the sweep.
	defaultLookahead = 3 * time.Minute
	// linkTTL is how long a link entry outlives its occurrence: a sweep
	// after an outage as long as this still finds it, and hands its timer
	// on; DynamoDB's TTL deletes it after that, for free.
	linkTTL = 35 * 24 * time.Hour
)

// DueEntry is one entry of a bucket: the link of a timer's next
// occurrence, with what the sweeper needs to send it and to handle it when
// it is late, without reading the timer.
type DueEntry struct {
	TimerID string `dynamodbav:"tid"`
	// At is the occurrence, in Unix seconds.
	At      int64 `dynamodbav:"at"`
	Version int64 `dynamodbav:"v"`
	// WrittenAt is when the entry was written, in Unix seconds: the
	// occurrence is the sweeper's only when At is beyond it by more than
	// shortNotice.
	WrittenAt int64 `dynamodbav:"w"`
	// The timer's schedule, for the occurrence after a missed one.
	Expr   string `dynamodbav:"x"`
	Zone   string `dynamodbav:"z,omitempty"`
	Anchor int64  `dynamodbav:"a,omitempty"`
	Start  int64  `dynamodbav:"s,omitempty"`
	End    int64  `dynamodbav:"e,omitempty"`
	// CatchUp is the timer's catch-up window in seconds.
	CatchUp     int  `dynamodbav:"c"`
	DeleteAfter bool `dynamodbav:"d,omitempty"`
	// Spread is the timer's spread window in seconds (spread.go), for the
	// planned instant of its messages; 0: none.
	Spread int `dynamodbav:"sp,omitempty"`
	// Period and Slot make it a slot entry (see PlanDue), written once and
	// read every Period minutes: it stands for each of its timer's
	// occurrences in a minute m with m mod Period == Slot. Period 0: a link.
	Period int `dynamodbav:"p,omitempty"`
	Slot   int `dynamodbav:"q,omitempty"`
	// Parts is how many partitions the link's hour had when it was
	// written, which with the timer id names its partition (0: dueParts).
	// The sweeper raises an hour's when its writes are throttled.
	Parts int `dynamodbav:"n,omitempty"`
}

// dueEntryOf is timer t's link to its occurrence at, written at now.
func dueEntryOf(t *Timer, at, now time.Time) DueEntry {
	e := DueEntry{TimerID: t.ID, At: at.Unix(), Version: t.Version, WrittenAt: now.Unix(), Expr: t.Expression(),
		Zone: t.Timezone, CatchUp: t.catchUpWindow(), DeleteAfter: t.DeleteAfterCompletion, Spread: t.SpreadSeconds}
	if isRate(e.Expr) {
		e.Anchor = t.Anchor.Unix()
	}
	if t.StartAt != nil {
		e.Start = t.StartAt.Unix()
	}
	if t.EndAt != nil {
		e.End = t.EndAt.Unix()
	}
	return e
}

// timer is the part of the timer the entry carries, enough for its
// Schedule.
func (e DueEntry) timer() *Timer {
	t := &Timer{ID: e.TimerID, ScheduleExpr: e.Expr, Timezone: e.Zone, Version: e.Version,
		CatchUpSeconds: e.CatchUp, DeleteAfterCompletion: e.DeleteAfter, Anchor: time.Unix(e.Anchor, 0).UTC(), SpreadSeconds: e.Spread}
	if e.Start != 0 {
		s := time.Unix(e.Start, 0).UTC()
		t.StartAt = &s
	}
	if e.End != 0 {
		end := time.Unix(e.End, 0).UTC()
		t.EndAt = &end
	}
	return t
}

// occurrence is the entry's occurrence instant.
func (e DueEntry) occurrence() time.Time { return time.Unix(e.At, 0).UTC() }

// sweepersOwn reports whether the entry's occurrence is the sweeper's to
// send rather than its writer's (see shortNotice).
func (e DueEntry) sweepersOwn() bool { return e.At-e.WrittenAt > int64(shortNotice/time.Second) }

// isRate reports whether expr is a rate schedule, whose anchor matters.
func isRate(expr string) bool { return len(expr) > 5 && expr[:5] == "rate(" }

// unixMinute is the bucket of instant t.
func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

// BucketRange is what one query of the due path reads: the minutes From
// to To (of the hour, inclusive) of partition Part of hour Hour (Unix
// hours); or, with Period set, the slots Hour*60+From to Hour*60+To of
// that period's slot entries.
type BucketRange struct {
	Period   int
	Hour     int64
	Part     int
	From, To int
}

// partitionKey is the partition a range reads.
func (r BucketRange) partitionKey() string {
	if r.Period > 0 {
		return pkSlot + strconv.Itoa(r.Period) + "#" + strconv.FormatInt(r.Hour, 10) + "#" + strconv.Itoa(r.Part)
	}
	return pkDue + strconv.FormatInt(r.Hour, 10) + "#" + strconv.Itoa(r.Part)
}

// slotRanges are the ranges of period's slot entries that cover the
// minutes first to last: every slot once the minutes span a period.
func slotRanges(period int, first, last int64) []BucketRange {
	p := int64(period)
	var spans [][2]int64
	switch {
	case last < first:
	case last-first+1 >= p:
		spans = append(spans, [2]int64{0, p - 1})
	case first%p <= last%p:
		spans = append(spans, [2]int64{first % p, last % p})
	default: // wraps round the period's end
		spans = append(spans, [2]int64{first % p, p - 1}, [2]int64{0, last % p})
	}
	var out []BucketRange
	for _, sp := range spans {
		for h := sp[0] / 60; h <= sp[1]/60; h++ {
			from, to := 0, 59
			if h == sp[0]/60 {
				from = int(sp[0] % 60)
			}
			if h == sp[1]/60 {
				to = int(sp[1] % 60)
			}
			for part := range dueParts {
				out = append(out, BucketRange{Period: period, Hour: h, Part: part, From: from, To: to})
			}
		}
	}
	return out
}

// slotKey is the key of timer id's entry for slot s.
func slotKey(s DueSlot, id string) map[string]types.AttributeValue {
	return itemKey(pkSlot+strconv.Itoa(s.Period)+"#"+strconv.Itoa(s.Slot/60)+"#"+strconv.Itoa(partOf(id)), fmt.Sprintf("%02d#%s", s.Slot%60, id))
}

// slotItem is the DynamoDB item of timer t's entry for slot s, written at
// now.
func slotItem(t *Timer, s DueSlot, now time.Time) (map[string]types.AttributeValue, error) {
	e := dueEntryOf(t, time.Time{}, now)
	e.Period, e.Slot = s.Period, s.Slot
	av, err := attributevalue.MarshalMap(e)
	if err != nil {
		return nil, fmt.Errorf("encode the slot of %s: %w", t.ID, err)
	}
	for k, v := range slotKey(s, t.ID) {
		av[k] = v
	}
	return av, nil
}

// bucketRanges are the ranges that cover the minutes first to last, each
// hour's over its parts (nil: dueParts each).
func bucketRanges(first, last int64, parts map[int64]int) []BucketRange {
	var out []BucketRange
	for h := first / 60; h <= last/60; h++ {
		from, to := 0, 59
		if h == first/60 {
			from = int(first % 60)
		}
		if h == last/60 {
			to = int(last % 60)
		}
		for part := range partsOr(parts[h]) {
			out = append(out, BucketRange{Hour: h, Part: part, From: from, To: to})
		}
	}
	return out
}

// linkKey is the key of timer id's link to its occurrence in minute, in a
// bucket of parts partitions (0: dueParts).
func linkKey(minute int64, id string, parts int) map[string]types.AttributeValue {
	return itemKey(pkDue+strconv.FormatInt(minute/60, 10)+"#"+strconv.Itoa(partIn(id, parts)), fmt.Sprintf("%02d#%s", minute%60, id))
}

// partOf is timer id's partition of a slot, or of a bucket of dueParts.
func partOf(id string) int { return partIn(id, dueParts) }

// partIn is timer id's partition of a bucket of parts partitions (0:
// dueParts). parts is a power of two, so that raising it splits each
// partition in two.
func partIn(id string, parts int) int { return int(hash32("due:"+id) % uint32(partsOr(parts))) }

// partsOr is parts, or dueParts for 0.
func partsOr(parts int) int {
	if parts <= 0 {
		return dueParts
	}
	return parts
}

// linkItem is the DynamoDB item of e.
func linkItem(e DueEntry) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMap(e)
	if err != nil {
		return nil, fmt.Errorf("encode the link of %s: %w", e.TimerID, err)
	}
	for k, v := range linkKey(e.At/60, e.TimerID, e.Parts) {
		av[k] = v
	}
	av["expiresAt"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(e.occurrence().Add(linkTTL).Unix(), 10)}
	return av, nil
}

// maxBatchWrite is DynamoDB's limit on one BatchWriteItem call.
const maxBatchWrite = 25

// PutLinks writes links in batches of 25, each batch once, and returns
// the links DynamoDB left unprocessed (throttled): the sweeper raises
// their hour's partitions and writes them again (see sweepRun.putLinks).
// A link needs no condition: a timer has one per occurrence, by its key,
// and a stale one is deleted by the invoker when it drops the stale
// occurrence before it.
func (s *Store) PutLinks(ctx context.Context, links []DueEntry) ([]DueEntry, error) {
	// The batches go out at once: one round trip for a sweep's chunk.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		left []DueEntry
		errs []error
	)
	for len(links) > 0 {
		batch := links[:min(maxBatchWrite, len(links))]
		links = links[len(batch):]
		wg.Add(1)
		go func() {
			defer wg.Done()
			un, err := s.putLinkBatch(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			left, errs = append(left, un...), append(errs, err)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return left, nil
}

// putLinkBatch is one BatchWriteItem of at most 25 links; it returns
// those left unprocessed.
func (s *Store) putLinkBatch(ctx context.Context, links []DueEntry) ([]DueEntry, error) {
	reqs := make([]types.WriteRequest, 0, len(links))
	for _, e := range links {
		item, err := linkItem(e)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	out, err := s.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.Table: reqs}})
	if err != nil {
		return nil, fmt.Errorf("link next occurrences: %w", err)
	}
	un := out.UnprocessedItems[s.Table]
	if len(un) == 0 {
		return nil, nil
	}
	byKey := make(map[[2]string]DueEntry, len(links))
	for k, e := range links {
		byKey[itemKeyOf(reqs[k].PutRequest.Item)] = e
	}
	var left []DueEntry
	for _, r := range un {
		if r.PutRequest == nil {
			continue
		}
		if e, ok := byKey[itemKeyOf(r.PutRequest.Item)]; ok {
			left = append(left, e)
		}
	}
	return left, nil
}

// itemKeyOf is an item's pk and sk.
func itemKeyOf(item map[string]types.AttributeValue) [2]string {
	var k [2]string
	for i, name := range []string{attrPK, attrSK} {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			k[i] = v.Value
		}
	}
	return k
}

// DeleteLink deletes timer id's link at instant at (Unix seconds), in a
// bucket of parts partitions (0: dueParts), if it is still that of
// version: a stale timer's chain ends there. A link of the timer's new
// version at the same instant is kept.
func (s *Store) DeleteLink(ctx context.Context, id string, at int64, parts int, version int64) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           &s.Table,
		Key:                 linkKey(at/60, id, parts),
		ConditionExpression: aws.String("v = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(version, 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("end the links of %s: %w", id, err)
	}
	return nil
}

// Bucket calls page with each page of the links in r, in order of their
// minute. Reads are eventually consistent: a link is the sweeper's only
// long after it was written (shortNotice).
func (s *Store) Bucket(ctx context.Context, r BucketRange, page func([]DueEntry) error) error {
	key := r.partitionKey()
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: key},
			":from": &types.AttributeValueMemberS{Value: fmt.Sprintf("%02d#", r.From)},
			":to":   &types.AttributeValueMemberS{Value: fmt.Sprintf("%02d#~", r.To)}, // '~' sorts after every id character
		},
	}
	if s.PageLimit > 0 {
		in.Limit = aws.Int32(s.PageLimit)
	}
	p := dynamodb.NewQueryPaginator(s.DB, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("read bucket %s: %w", key, err)
		}
		entries := make([]DueEntry, 0, len(out.Items))
		for _, av := range out.Items {
			var e DueEntry
			if err := attributevalue.UnmarshalMap(av, &e); err != nil {
				return fmt.Errorf("decode an entry of bucket %s: %w", key, err)
			}
			entries = append(entries, e)
		}
		if err := page(entries); err != nil {
			return err
		}
	}
	return nil
}

// DeleteSlot deletes slot entry e, whose timer has no occurrence left, if
// it is still that version's.
func (s *Store) DeleteSlot(ctx context.Context, e DueEntry) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.Table, Key: slotKey(DueSlot{Period: e.Period, Slot: e.Slot}, e.TimerID),
		ConditionExpression: aws.String("v = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(e.Version, 10)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("delete a finished slot of %s: %w", e.TimerID, err)
	}
	return nil
}

// Periods returns the slot periods in use: those of every slot entry
// written (see usePeriods). Consistent, so that a period added before a
// slot's first occurrence that is the sweeper's is always seen.
func (s *Store) Periods(ctx context.Context) ([]int, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: itemKey(pkPeriods, skPeriods), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read the slot periods: %w", err)
	}
	var p struct {
		Periods []int `dynamodbav:"ps,numberset"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &p); err != nil {
		return nil, fmt.Errorf("decode the slot periods: %w", err)
	}
	sort.Ints(p.Periods)
	return p.Periods, nil
}

// usePeriods adds the periods of slots to the set the sweeper reads,
// before any slot entry of theirs is written; a period this Store added
// once is not added again (the set only grows).
func (s *Store) usePeriods(ctx context.Context, slots []DueSlot) error {
	var add []string
	for _, sl := range slots {
		if _, known := s.periods.Load(sl.Period); !known && !slices.Contains(add, strconv.Itoa(sl.Period)) {
			add = append(add, strconv.Itoa(sl.Period))
		}
	}
	if len(add) == 0 {
		return nil
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: itemKey(pkPeriods, skPeriods),
		UpdateExpression:          aws.String("ADD ps :ps"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":ps": &types.AttributeValueMemberNS{Value: add}},
	})
	if err != nil {
		return fmt.Errorf("record the slot periods: %w", err)
	}
	for _, sl := range slots {
		s.periods.Store(sl.Period, true)
	}
	return nil
}

// Missed records e's occurrence as missed at sweptAt (later than its
// catch-up window) on the occurrence's item and the timer's count, and
// writes the timer's next link, next (nil: none), in the same
// transaction, so that the timer neither stops nor is counted twice.
// The timer's part is conditional on its version and on its not being
// paused: a replaced timer has links of its own, and a paused one gets
// them again when it resumes. A deleteAfterCompletion timer whose last
// occurrence this was is deleted instead.
func (s *Store) Missed(ctx context.Context, e DueEntry, sweptAt time.Time, next *DueEntry, last bool) error {
	o := Occurrence{TimerID: e.TimerID, At: e.occurrence()}
	const cond = "version = :version AND attribute_not_exists(pausedAt)"
	version := map[string]types.AttributeValue{":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(e.Version, 10)}}
	timer := types.TransactWriteItem{Update: &types.Update{
		TableName: &s.Table, Key: timerKey(e.TimerID),
		UpdateExpression:    aws.String("SET missedCount = if_not_exists(missedCount, :zero) + :one, lastMissedAt = :at"),
		ConditionExpression: aws.String(cond),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero":    &types.AttributeValueMemberN{Value: "0"},
			":one":     &types.AttributeValueMemberN{Value: "1"},
			":at":      &types.AttributeValueMemberN{Value: strconv.FormatInt(e.At, 10)},
			":version": version[":version"],
		},
	}}
	if last && e.DeleteAfter {
		// Its last occurrence was missed: nothing is left to deliver, so
		// nothing is left for the invoker to delete it after.
		timer = types.TransactWriteItem{Delete: &types.Delete{TableName: &s.Table, Key: timerKey(e.TimerID),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: version}}
	}
	items := []types.TransactWriteItem{s.missedItem(o, sweptAt), timer}
	if next != nil {
		item, err := linkItem(*next)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: item}})
	}
	_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 1 && aws.ToString(tce.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
		return nil // replaced or deleted: its own links carry on
	}
	if err != nil {
		return fmt.Errorf("record the missed occurrence of %s: %w", o, err)
	}
	return nil
}

// missedItem is the write, within a sweep's transaction, that records
// occurrence o as missed at sweptAt. It never overwrites what a delivery
// recorded there: an earlier sweep may have sent the occurrence after all.
func (s *Store) missedItem(o Occurrence, sweptAt time.Time) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.Table, Key: o.key(),
		UpdateExpression: aws.String("SET outcome = if_not_exists(outcome, :missed), attemptedAt = if_not_exists(attemptedAt, :swept), " +
			"attempt = if_not_exists(attempt, :zero), latencyMs = if_not_exists(latencyMs, :zero), scheduledAt = :at, expiresAt = :exp"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":missed": &types.AttributeValueMemberS{Value: OutcomeMissed},
			":swept":  &types.AttributeValueMemberS{Value: sweptAt.UTC().Format(time.RFC3339Nano)},
			":zero":   &types.AttributeValueMemberN{Value: "0"},
			":at":     &types.AttributeValueMemberS{Value: o.At.UTC().Format(time.RFC3339Nano)},
			":exp":    o.expiresAt(),
		},
	}}
}
