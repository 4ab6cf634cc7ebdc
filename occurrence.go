package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The invoker's calls: an occurrence's claim, its outcome, the release of
// a claim it cannot keep, a duplicate's record, and the delete of a
// deleteAfterCompletion timer once its last occurrence has its outcome.
// Occurrence items are read for the API in store_api.go (History, Show)
// and written as missed by the sweeper in due.go (Missed).

// Occurrence names one occurrence of a timer: a scheduled instant, or a
// fire by hand at an instant of its own.
type Occurrence struct {
	TimerID string
	At      time.Time
	// Manual marks a fire by hand, which never shares an item with a
	// scheduled occurrence at the same instant.
	Manual bool
}

// occurrenceLayout formats an occurrence's instant in its sort key: fixed
// width, to the nanosecond (fires by hand may come within a second of each
// other), so that occurrence items sort by time.
const occurrenceLayout = "2006-01-02T15:04:05.000000000Z"

// key is the key of o's item, in its timer's item collection.
func (o Occurrence) key() map[string]types.AttributeValue { return itemKey(o.TimerID, o.sortKey()) }

// sortKey is the sort key of o's item.
func (o Occurrence) sortKey() string {
	sk := skOccurrence + o.At.UTC().Format(occurrenceLayout)
	if o.Manual {
		sk += "#manual"
	}
	return sk
}

// String names o in logs and errors: the timer id and the instant.
func (o Occurrence) String() string {
	s := o.TimerID + " at " + o.At.UTC().Format(time.RFC3339Nano)
	if o.Manual {
		s += " (by hand)"
	}
	return s
}

// historyTTL is how long an occurrence item is kept, by DynamoDB's TTL:
// it is the history (a week), and the claim, which must outlive the
// longest retry window (a day) and the fire queue's retention (4 days).
const historyTTL = 7 * 24 * time.Hour

// expiresAt is the TTL attribute of o's item.
func (o Occurrence) expiresAt() types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(o.At.Add(historyTTL).Unix(), 10)}
}

// ClaimResult is what became of a claim.
type ClaimResult int

// Claim results.
const (
	// Claimed: the caller delivers the occurrence.
	Claimed ClaimResult = iota
	// ClaimDuplicate: another message claimed the occurrence, or it was
	// delivered; the caller drops its copy.
	ClaimDuplicate
	// ClaimInProgress: this same message, received again while an earlier
	// receive of it still delivers it (SQS may hand a message out twice);
	// the caller leaves it for later, when the earlier one has settled it.
	ClaimInProgress
)

// Claimant is who claims an occurrence: a message, as one receive of it.
type Claimant struct {
	// MessageID is the SQS message's id, the same at every receive.
	MessageID string
	// Token is this receive's own, new at each: it tells the SDK's retry of
	// this very claim (its response lost) from another receive of the same
	// message while this one still delivers it.
	Token string
	// Replay marks a message that may take over a dead letter's claim.
	Replay bool
}

// Claim records that c delivers occurrence o, leased to it until
// leaseUntil (the end of the function that delivers it). The same message
// may claim again (a retry after a failed attempt) once the lease has
// ended, until the occurrence is delivered; while the lease runs, another
// receive of it gets ClaimInProgress. A replay may also take over the
// claim of an occurrence that was dead-lettered and not delivered since,
// once: the claim clears the dead-letter mark.
//
// The claim is written on the occurrence's own item, which then holds its
// outcome too (Record): one item per occurrence serves as claim, settle and
// history.
func (s *Store) Claim(ctx context.Context, o Occurrence, c Claimant, now, leaseUntil time.Time) (ClaimResult, error) {
	free := "(attribute_not_exists(leaseUntil) OR leaseUntil < :now)"
	cond := "attribute_not_exists(messageId) OR (claimToken = :token AND attribute_not_exists(deliveredAt)) OR " +
		"(messageId = :msg AND attribute_not_exists(deliveredAt) AND " + free + ")"
	if c.Replay {
		cond += " OR (attribute_exists(deadLetteredAt) AND attribute_not_exists(deliveredAt) AND " + free + ")"
	}
	expr := "SET messageId = :msg, claimToken = :token, claimedAt = :claimedAt, leaseUntil = :lease, scheduledAt = :at, expiresAt = :exp REMOVE deadLetteredAt"
	values := map[string]types.AttributeValue{
		":msg":       &types.AttributeValueMemberS{Value: c.MessageID},
		":token":     &types.AttributeValueMemberS{Value: c.Token},
		":claimedAt": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)},
		":lease":     &types.AttributeValueMemberN{Value: strconv.FormatInt(leaseUntil.UnixMilli(), 10)},
		":now":       &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		":at":        &types.AttributeValueMemberS{Value: o.At.UTC().Format(time.RFC3339Nano)},
		":exp":       o.expiresAt(),
	}
	if o.Manual {
		expr = strings.Replace(expr, " REMOVE", ", manual = :manual REMOVE", 1)
		values[":manual"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: o.key(), UpdateExpression: &expr, ConditionExpression: &cond,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var old struct {
			MessageID   string `dynamodbav:"messageId"`
			DeliveredAt string `dynamodbav:"deliveredAt"`
		}
		_ = attributevalue.UnmarshalMap(ccf.Item, &old)
		if old.MessageID == c.MessageID && old.DeliveredAt == "" {
			return ClaimInProgress, nil
		}
		return ClaimDuplicate, nil
	}
	if err != nil {
		return ClaimDuplicate, fmt.Errorf("claim %s: %w", o, err)
	}
	return Claimed, nil
}

// Record stores f, the outcome of an attempt at occurrence o, on its item
// and ends the claim's lease. A delivered outcome also settles the
// occurrence: a copy of its message that comes later is a duplicate.
// deadLettered marks it dead-lettered, so that a replay may claim it
// again. An outcome other than delivered never overwrites a delivery.
func (s *Store) Record(ctx context.Context, o Occurrence, f LastFire, deadLettered bool, now time.Time) error {
	av, err := attributevalue.MarshalMap(f)
	if err != nil {
		return fmt.Errorf("encode the outcome of %s: %w", o, err)
	}
	av["expiresAt"] = o.expiresAt()
	if f.Outcome == OutcomeDelivered || f.Outcome == OutcomeSkipped { // both settle it
		av["deliveredAt"] = &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	}
	if deadLettered {
		av["deadLetteredAt"] = &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	}
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var sets []string
	for k, v := range av {
		names["#"+k] = k
		values[":"+k] = v
		sets = append(sets, "#"+k+" = :"+k)
	}
	sort.Strings(sets) // a stable expression reads better in logs and tests
	removes := []string{"leaseUntil"}
	for _, k := range []string{"status", "error", "replay"} { // omitempty fields of an earlier attempt
		if _, ok := av[k]; !ok {
			removes = append(removes, "#"+k)
			names["#"+k] = k
		}
	}
	in := &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: o.key(),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ") + " REMOVE " + strings.Join(removes, ", ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if f.Outcome != OutcomeDelivered {
		in.ConditionExpression = aws.String("attribute_not_exists(deliveredAt)")
	}
	_, err = s.DB.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // delivered meanwhile: that outcome stands
	}
	if err != nil {
		return fmt.Errorf("record the outcome of %s: %w", o, err)
	}
	return nil
}

// ReleaseClaim ends the lease of c's claim on occurrence o, whose attempt
// ended with nothing to record, so that the message's redelivery may claim
// it at once.
func (s *Store) ReleaseClaim(ctx context.Context, o Occurrence, c Claimant) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: o.key(),
		UpdateExpression:          aws.String("REMOVE leaseUntil"),
		ConditionExpression:       aws.String("claimToken = :token"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": &types.AttributeValueMemberS{Value: c.Token}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release the claim of %s: %w", o, err)
	}
	return nil
}

// Duplicate counts a copy of occurrence o's message that was dropped, on
// its item, for its history.
func (s *Store) Duplicate(ctx context.Context, o Occurrence, now time.Time) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: o.key(),
		UpdateExpression:    aws.String("SET lastDuplicateAt = :now ADD duplicates :one"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)},
			":one": &types.AttributeValueMemberN{Value: "1"},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("count a duplicate of %s: %w", o, err)
	}
	return nil
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
