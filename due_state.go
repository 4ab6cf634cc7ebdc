package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The sweep's state, one item (see store.go's layout): the lease that
// lets one sweep run at a time, the first minute not yet read, and the
// hours whose partitions a sweep raised. The sweeper takes, raises and
// releases it; the API only makes sure it exists before its first link
// (startSweep).

// sweepKey is the key of the sweep's state.
func sweepKey() map[string]types.AttributeValue { return itemKey(pkSweep, skSweep) }

// SweepState is what a sweep finds in the sweep's item when it takes the
// lease.
type SweepState struct {
	// Through is the first minute not yet swept (0 before the first sweep).
	Through int64
	// Parts are the hours whose buckets a sweep raised beyond dueParts
	// partitions (Unix hour -> partitions): a sweep reads each of their
	// ranges over that many.
	Parts map[int64]int
}

// partsAttr is the sweep item's attribute that holds hour's partitions,
// when raised: "p" and the Unix hour.
func partsAttr(hour int64) string { return "p" + strconv.FormatInt(hour, 10) }

// LeaseSweep gives the sweep to owner until now+ttl, unless another sweep
// holds an unexpired lease or the sweep of eventID already completed
// (EventBridge can deliver one scheduled event twice). It returns the
// sweep's state and whether owner got the lease.
func (s *Store) LeaseSweep(ctx context.Context, owner, eventID string, now time.Time, ttl time.Duration) (SweepState, bool, error) {
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &s.Table,
		Key:              sweepKey(),
		UpdateExpression: aws.String("SET leaseOwner = :owner, leaseUntil = :until"),
		ConditionExpression: aws.String("(attribute_not_exists(leaseUntil) OR leaseUntil < :now) AND " +
			"(attribute_not_exists(lastEventId) OR lastEventId <> :event)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: owner},
			":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":event": &types.AttributeValueMemberS{Value: eventID},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return SweepState{}, false, nil
	}
	if err != nil {
		return SweepState{}, false, fmt.Errorf("lease the sweep: %w", err)
	}
	var st struct {
		Through int64 `dynamodbav:"through"`
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &st); err != nil {
		return SweepState{}, false, fmt.Errorf("decode the sweep's state: %w", err)
	}
	state := SweepState{Through: st.Through}
	for name, v := range out.Attributes {
		hour, err := strconv.ParseInt(strings.TrimPrefix(name, "p"), 10, 64)
		n, ok := v.(*types.AttributeValueMemberN)
		if !strings.HasPrefix(name, "p") || err != nil || !ok {
			continue
		}
		parts, err := strconv.Atoi(n.Value)
		if err != nil || parts <= 0 {
			return SweepState{}, false, fmt.Errorf("decode the sweep's state: %s is %q", name, n.Value)
		}
		if state.Parts == nil {
			state.Parts = map[int64]int{}
		}
		state.Parts[hour] = parts
	}
	return state, true, nil
}

// errLeaseLost is RaiseParts' answer to a sweep whose lease another took.
var errLeaseLost = errors.New("the sweep's lease was taken by another sweep")

// RaiseParts records that hour's bucket has parts partitions, for owner's
// sweep, before any link is written into the new ones: every later sweep
// reads them (LeaseSweep). It never lowers the count (a link may be in
// any partition below it), and only the lease's owner raises it, so that
// no sweep reads an hour with fewer partitions than were written. It
// returns the count now recorded; errLeaseLost when owner lost the lease.
func (s *Store) RaiseParts(ctx context.Context, owner string, hour int64, parts int) (int, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.Table,
		Key:                      sweepKey(),
		UpdateExpression:         aws.String("SET #p = :n"),
		ConditionExpression:      aws.String("leaseOwner = :owner AND (attribute_not_exists(#p) OR #p < :n)"),
		ExpressionAttributeNames: map[string]string{"#p": partsAttr(hour)},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: owner},
			":n":     &types.AttributeValueMemberN{Value: strconv.Itoa(parts)},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		if err != nil {
			return 0, fmt.Errorf("raise the partitions of hour %d: %w", hour, err)
		}
		return parts, nil
	}
	// Refused: the lease is gone, or the hour has as many already. Which,
	// the item says (a rare path: one raise of an hour runs at a time).
	got, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: sweepKey(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("raise the partitions of hour %d: %w", hour, err)
	}
	var st struct {
		Owner string `dynamodbav:"leaseOwner"`
	}
	if err := attributevalue.UnmarshalMap(got.Item, &st); err != nil || st.Owner != owner {
		return 0, errLeaseLost
	}
	n, _ := got.Item[partsAttr(hour)].(*types.AttributeValueMemberN)
	recorded := 0
	if n != nil {
		recorded, _ = strconv.Atoi(n.Value)
	}
	if recorded < parts {
		return 0, fmt.Errorf("raise the partitions of hour %d: refused with %d recorded", hour, recorded)
	}
	return recorded, nil // raised already, as far or further
}

// ReleaseSweep ends owner's lease. through, when above 0, is the first
// minute the next sweep reads: every bucket before it was swept, and the
// raised partitions of drop's hours, all before it, are forgotten. A
// completed sweep records its event, so that the same event delivered
// again does nothing.
func (s *Store) ReleaseSweep(ctx context.Context, owner, eventID string, through int64, completed bool, now time.Time, drop []int64) error {
	expr := "REMOVE leaseOwner, leaseUntil"
	values := map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}}
	var names map[string]string
	for i, h := range drop {
		if through <= 0 || h >= through/60 {
			continue // an hour still to be read keeps its partitions
		}
		if names == nil {
			names = map[string]string{}
		}
		names["#p"+strconv.Itoa(i)] = partsAttr(h)
		expr += ", #p" + strconv.Itoa(i)
	}
	var sets []string
	if through > 0 {
		sets = append(sets, "through = :through")
		values[":through"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(through, 10)}
	}
	if completed {
		sets = append(sets, "lastEventId = :event", "completedAt = :now")
		values[":event"] = &types.AttributeValueMemberS{Value: eventID}
		values[":now"] = &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	}
	if len(sets) > 0 {
		expr = "SET " + strings.Join(sets, ", ") + " " + expr
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.Table,
		Key:                       sweepKey(),
		UpdateExpression:          &expr,
		ConditionExpression:       aws.String("leaseOwner = :owner"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // the lease expired and another sweep took it: nothing of ours to release
	}
	if err != nil {
		return fmt.Errorf("release the sweep: %w", err)
	}
	return nil
}

// startSweep makes sure, before the first link this Store writes, that the
// sweep's state exists, so that the first sweep reads from before that
// link rather than from its own start: a table's first timers may be
// written before its first sweep runs. Once per Store.
func (s *Store) startSweep(ctx context.Context, due bool, now time.Time) error {
	if !due || s.sweepStarted.Load() {
		return nil
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &s.Table,
		Key:              sweepKey(),
		UpdateExpression: aws.String("SET through = if_not_exists(through, :minute)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":minute": &types.AttributeValueMemberN{Value: strconv.FormatInt(unixMinute(now), 10)},
		},
	})
	if err != nil {
		return fmt.Errorf("start the sweep: %w", err)
	}
	s.sweepStarted.Store(true)
	return nil
}
