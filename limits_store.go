package main

// The table's side of destination limits: the limits themselves (the
// API's, one partition, so that the list is one Query), each
// destination's state item (the invoker's: its slot counter, its block
// and its in-flight leases, which hold the limit across every invoker
// execution), and the limit's marks on an occurrence item.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// limitItem is a limit as the API stores it, in the pkLimits partition.
type limitItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	PerSecond int    `dynamodbav:"perSecond,omitempty"`
	InFlight  int    `dynamodbav:"inFlight,omitempty"`
	CreatedAt string `dynamodbav:"createdAt"`
	UpdatedAt string `dynamodbav:"updatedAt"`
}

func (it limitItem) limit() Limit {
	l := Limit{Key: it.SK, PerSecond: it.PerSecond, InFlight: it.InFlight}
	l.CreatedAt, _ = time.Parse(time.RFC3339Nano, it.CreatedAt)
	l.UpdatedAt, _ = time.Parse(time.RFC3339Nano, it.UpdatedAt)
	return l
}

// destKey is the key of destination key's state item.
func destKey(key string) map[string]types.AttributeValue { return itemKey(pkDest+key, skDest) }

// num is a number attribute.
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// PutLimit stores l, created or replaced, and copies it onto the
// destination's state item in the same transaction, leaving its counters
// and leases as they are. It returns whether l is new.
func (s *Store) PutLimit(ctx context.Context, l Limit, now time.Time) (Limit, bool, error) {
	old, err := s.GetLimit(ctx, l.Key)
	created := ErrorCode(err) == ENOTFOUND
	if err != nil && !created {
		return Limit{}, false, err
	}
	l.CreatedAt, l.UpdatedAt = now.UTC(), now.UTC()
	if !created {
		l.CreatedAt = old.CreatedAt
	}
	item, err := attributevalue.MarshalMap(limitItem{PK: pkLimits, SK: l.Key, PerSecond: l.PerSecond, InFlight: l.InFlight,
		CreatedAt: l.CreatedAt.Format(time.RFC3339Nano), UpdatedAt: l.UpdatedAt.Format(time.RFC3339Nano)})
	if err != nil {
		return Limit{}, false, err
	}
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.Table, Item: item}},
		{Update: &types.Update{TableName: &s.Table, Key: destKey(l.Key),
			UpdateExpression:          aws.String("SET perSecond = :p, inFlight = :f"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": num(int64(l.PerSecond)), ":f": num(int64(l.InFlight))}}},
	}})
	if err != nil {
		return Limit{}, false, fmt.Errorf("put the limit of %s: %w", l.Key, err)
	}
	return l, created, nil
}

// GetLimit reads the limit of key; ENOTFOUND if there is none.
func (s *Store) GetLimit(ctx context.Context, key string) (Limit, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: itemKey(pkLimits, key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Limit{}, fmt.Errorf("read the limit of %s: %w", key, err)
	}
	if out.Item == nil {
		return Limit{}, Errorf(ENOTFOUND, "no limit for %s", key)
	}
	var it limitItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Limit{}, fmt.Errorf("decode the limit of %s: %w", key, err)
	}
	return it.limit(), nil
}

// DeleteLimit deletes the limit of key and its destination's state (its
// counters and leases: without a limit there is nothing to hold).
func (s *Store) DeleteLimit(ctx context.Context, key string) error {
	_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &s.Table, Key: itemKey(pkLimits, key), ConditionExpression: aws.String("attribute_exists(pk)")}},
		{Delete: &types.Delete{TableName: &s.Table, Key: destKey(key)}},
	}})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return Errorf(ENOTFOUND, "no limit for %s", key)
	}
	if err != nil {
		return fmt.Errorf("delete the limit of %s: %w", key, err)
	}
	return nil
}

// ListLimits returns every limit, by key: one Query of their partition.
func (s *Store) ListLimits(ctx context.Context) ([]Limit, error) {
	var limits []Limit
	p := dynamodb.NewQueryPaginator(s.DB, &dynamodb.QueryInput{TableName: &s.Table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pkLimits}}})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the limits: %w", err)
		}
		for _, av := range out.Items {
			var it limitItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fmt.Errorf("decode a limit: %w", err)
			}
			limits = append(limits, it.limit())
		}
	}
	return limits, nil
}

// destView reads a destination's state item.
func destView(item map[string]types.AttributeValue) DestState {
	v := DestState{Exists: item != nil, Leases: map[int]int64{}}
	n := func(name string) int64 {
		if a, ok := item[name].(*types.AttributeValueMemberN); ok {
			x, _ := strconv.ParseInt(a.Value, 10, 64)
			return x
		}
		return 0
	}
	v.PerSecond, v.InFlight = int(n("perSecond")), int(n("inFlight"))
	v.Next, v.NextRate, v.BlockedUntil = n("nxt"), n("np"), n("blockedUntil")
	for i := 0; i < v.InFlight; i++ {
		if x := n(leaseAttr(i)); x > 0 {
			v.Leases[i] = x
		}
	}
	if v.PerSecond == 0 && v.InFlight == 0 {
		v.Exists = false // a state item left by a block, without a limit
	}
	return v
}

// leaseAttr names in-flight lease i on the state item.
func leaseAttr(i int) string { return "f" + strconv.Itoa(i) }

// Destination reads key's state item, eventually consistent: the limit
// is what it needs, and the counters are checked by every write.
func (s *Store) Destination(ctx context.Context, key string) (DestState, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: destKey(key)})
	if err != nil {
		return DestState{}, fmt.Errorf("read the destination %s: %w", key, err)
	}
	return destView(out.Item), nil
}

// updateDest makes one conditional update of key's state item. It
// returns the item after it, or, when the condition failed, the item as
// it was and ok false.
func (s *Store) updateDest(ctx context.Context, key, expr, cond string, values map[string]types.AttributeValue, names map[string]string) (DestState, bool, error) {
	in := &dynamodb.UpdateItemInput{TableName: &s.Table, Key: destKey(key), UpdateExpression: &expr,
		ConditionExpression: &cond, ExpressionAttributeValues: values, ReturnValues: types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if len(names) > 0 {
		in.ExpressionAttributeNames = names
	}
	out, err := s.DB.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return destView(ccf.Item), false, nil
	}
	if err != nil {
		return DestState{}, false, fmt.Errorf("update the destination %s: %w", key, err)
	}
	return destView(out.Attributes), true, nil
}

// maxLimitTries bounds the conditional writes one call of the limiter
// makes while other invokers change the same item.
const maxLimitTries = 8

// TakeSlot hands out the destination's next free slot at its rate, never
// one before now: one atomic increment of its counter while it runs ahead
// of now, a conditional reset to now when it has fallen behind (or the
// rate changed). view is the state as last seen. It returns the slot
// (counted at the returned state's PerSecond), or errNoLimit.
func (s *Store) TakeSlot(ctx context.Context, key string, view DestState, now time.Time) (int64, DestState, error) {
	for try := 0; try < maxLimitTries; try++ {
		if !view.Exists || view.PerSecond == 0 {
			return 0, view, errNoLimit
		}
		p := view.PerSecond
		nowIdx := firstSlot(now.UnixMilli(), p)
		vals := map[string]types.AttributeValue{":p": num(int64(p)), ":now": num(nowIdx), ":one": num(1)}
		if view.NextRate == int64(p) && view.Next >= nowIdx {
			got, ok, err := s.updateDest(ctx, key, "SET nxt = nxt + :one", "perSecond = :p AND np = :p AND nxt >= :now", vals, nil)
			if err != nil {
				return 0, view, err
			}
			if ok {
				return got.Next - 1, got, nil
			}
			view = got
			continue
		}
		// Behind now, or counted at another rate: start again from the
		// later of now and the old counter's instant.
		base := nowIdx
		if view.NextRate > 0 {
			base = max(base, firstSlot(slotStart(view.Next, int(view.NextRate)), p))
		}
		vals = map[string]types.AttributeValue{":p": num(int64(p)), ":next": num(base + 1)}
		cond := "perSecond = :p AND attribute_not_exists(nxt)"
		if view.NextRate > 0 {
			vals[":oldn"], vals[":oldp"] = num(view.Next), num(view.NextRate)
			cond = "perSecond = :p AND nxt = :oldn AND np = :oldp"
		}
		got, ok, err := s.updateDest(ctx, key, "SET nxt = :next, np = :p", cond, vals, nil)
		if err != nil {
			return 0, view, err
		}
		if ok {
			return base, got, nil
		}
		view = got
	}
	return 0, view, fmt.Errorf("slot of %s: the counter kept changing", key)
}

// secondKey is the key of the count of destination key's calls in UTC
// second sec: an item of its own per second, so that the count spreads
// over partitions instead of heating the state item.
func secondKey(key string, sec int64) map[string]types.AttributeValue {
	return itemKey(pkDest+key+"#"+strconv.FormatInt(sec, 10), skSecond)
}

// CountCall counts one call of the destination in UTC second sec, if the
// second holds fewer than perSecond: one conditional increment. It reports
// whether the call was counted. The count expires an hour later (TTL).
func (s *Store) CountCall(ctx context.Context, key string, perSecond int, sec int64) (bool, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: secondKey(key, sec),
		UpdateExpression:    aws.String("ADD n :one SET expiresAt = :exp"),
		ConditionExpression: aws.String("attribute_not_exists(n) OR n < :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":p": num(int64(perSecond)),
			":exp": num(sec + 3600)}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("count a call of %s: %w", key, err)
	}
	return true, nil
}

// AcquireLease takes a free in-flight lease of the destination until
// until (the call's deadline: a crashed call's lease ends by itself). A
// lease is free when unset or expired; none is taken while a Retry-After
// blocks the destination. It returns the lease's index, or -1 when every
// lease is held (or the destination is blocked), with the state it saw.
func (s *Store) AcquireLease(ctx context.Context, key string, view DestState, now, until time.Time) (int, DestState, error) {
	nowMs := now.UnixMilli()
	for try := 0; try < maxLimitTries; try++ {
		if !view.Exists || view.InFlight == 0 {
			return -1, view, errNoLimit
		}
		if view.BlockedUntil > nowMs {
			return -1, view, nil
		}
		free := -1
		for i := 0; i < view.InFlight && free < 0; i++ {
			if view.Leases[i] < nowMs {
				free = i
			}
		}
		if free < 0 {
			return -1, view, nil
		}
		names := map[string]string{"#f": leaseAttr(free)}
		vals := map[string]types.AttributeValue{":i": num(int64(free)), ":now": num(nowMs), ":until": num(until.UnixMilli())}
		got, ok, err := s.updateDest(ctx, key, "SET #f = :until",
			"inFlight > :i AND (attribute_not_exists(#f) OR #f < :now) AND (attribute_not_exists(blockedUntil) OR blockedUntil <= :now)",
			vals, names)
		if err != nil {
			return -1, view, err
		}
		if ok {
			return free, got, nil
		}
		view = got
	}
	return -1, view, nil
}

// ReleaseLease frees lease i, if it is still the one taken until until.
func (s *Store) ReleaseLease(ctx context.Context, key string, i int, until time.Time) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: destKey(key),
		UpdateExpression: aws.String("REMOVE #f"), ConditionExpression: aws.String("#f = :until"),
		ExpressionAttributeNames:  map[string]string{"#f": leaseAttr(i)},
		ExpressionAttributeValues: map[string]types.AttributeValue{":until": num(until.UnixMilli())}})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release lease %d of %s: %w", i, key, err)
	}
	return nil
}

// BlockDestination holds every call of the destination until until (a
// Retry-After), never shortening a block, and moves its slot counter past
// it, so that the slots handed out from now on follow the block.
func (s *Store) BlockDestination(ctx context.Context, key string, view DestState, until time.Time) error {
	b := until.UnixMilli()
	_, ok, err := s.updateDest(ctx, key, "SET blockedUntil = :b",
		"(attribute_exists(perSecond) OR attribute_exists(inFlight)) AND (attribute_not_exists(blockedUntil) OR blockedUntil < :b)",
		map[string]types.AttributeValue{":b": num(b)}, nil)
	if err != nil || !ok || view.PerSecond == 0 {
		return err
	}
	p := int64(view.PerSecond)
	idx := firstSlot(b, view.PerSecond)
	_, _, err = s.updateDest(ctx, key, "SET nxt = :idx, np = :p",
		"perSecond = :p AND (attribute_not_exists(nxt) OR np <> :p OR nxt < :idx)",
		map[string]types.AttributeValue{":idx": num(idx), ":p": num(p)}, nil)
	return err
}

// DeferOccurrence records on o's item that its message waits in the queue
// for its destination's limit (w: its slot, the waits so far), and ends
// the claim's lease, so that the message's next receive claims it again.
func (s *Store) DeferOccurrence(ctx context.Context, o Occurrence, c Claimant, w LimitWait) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: o.key(),
		UpdateExpression:    aws.String("SET limitKey = :k, limitSlot = :s, limitWaits = :w, limitSince = :since, limitAttempt = :a REMOVE leaseUntil"),
		ConditionExpression: aws.String("claimToken = :token"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberS{Value: w.Key},
			":s": num(w.Slot), ":w": num(int64(w.Waits)), ":since": num(w.Since), ":a": num(int64(w.Attempt)),
			":token": &types.AttributeValueMemberS{Value: c.Token}}})
	if err != nil {
		return fmt.Errorf("record the limit wait of %s: %w", o, err)
	}
	return nil
}

// LimitWaited reads what o's item remembers of its waits for a limit.
func (s *Store) LimitWaited(ctx context.Context, o Occurrence) (LimitWait, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: o.key(), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("limitKey, limitSlot, limitWaits, limitSince, limitAttempt")})
	if err != nil {
		return LimitWait{}, fmt.Errorf("read the limit waits of %s: %w", o, err)
	}
	var w struct {
		Key     string `dynamodbav:"limitKey"`
		Slot    int64  `dynamodbav:"limitSlot"`
		Waits   int    `dynamodbav:"limitWaits"`
		Since   int64  `dynamodbav:"limitSince"`
		Attempt int    `dynamodbav:"limitAttempt"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &w); err != nil {
		return LimitWait{}, fmt.Errorf("decode the limit waits of %s: %w", o, err)
	}
	return LimitWait(w), nil
}
