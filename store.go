package main

import (
	"context"
	"encoding/json"
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

// DueIndex is the global secondary index the sweeper queries: partition key
// shardId, sort key nextFireAt (Unix seconds). It is sparse: a timer without
// a next occurrence has no nextFireAt and drops out of it.
const DueIndex = "byShardDue"

// dynamoAPI is the part of the DynamoDB client the store uses.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store keeps timers in one DynamoDB table keyed by id, with DueIndex for
// the sweeper.
type Store struct {
	DB    dynamoAPI
	Table string
}

// NewStore returns a Store on table.
func NewStore(db dynamoAPI, table string) *Store { return &Store{DB: db, Table: table} }

// timerItem is the DynamoDB form of a Timer. Instants are Unix seconds
// (nextFireAt, so the index sorts by it) or RFC 3339 text (for people
// reading the console).
type timerItem struct {
	ID                    string      `dynamodbav:"id"`
	ShardID               string      `dynamodbav:"shardId"`
	MinuteOfHour          int         `dynamodbav:"minuteOfHour"`
	Schedule              string      `dynamodbav:"schedule,omitempty"`
	Timezone              string      `dynamodbav:"timezone,omitempty"`
	StartAt               string      `dynamodbav:"startAt,omitempty"`
	EndAt                 string      `dynamodbav:"endAt,omitempty"`
	AnchorAt              string      `dynamodbav:"anchorAt,omitempty"`
	DeleteAfterCompletion bool        `dynamodbav:"deleteAfterCompletion,omitempty"`
	CallbackData          string      `dynamodbav:"timerCallbackData,omitempty"`
	HTTP                  *HTTPTarget `dynamodbav:"http,omitempty"`
	NextFireAt            int64       `dynamodbav:"nextFireAt,omitempty"`
	CreatedAt             string      `dynamodbav:"createdAt"`
	UpdatedAt             string      `dynamodbav:"updatedAt"`
	Version               int64       `dynamodbav:"version"`
}

// optionalAttrs are removed from the item when a replacement lacks them.
var optionalAttrs = []string{"schedule", "timezone", "startAt", "endAt", "anchorAt", "deleteAfterCompletion",
	"timerCallbackData", "http", "nextFireAt"}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

func toItem(t *Timer) timerItem {
	it := timerItem{
		ID:           t.ID,
		ShardID:      t.ShardID,
		MinuteOfHour: t.MinuteOfHour,
		Schedule:     t.ScheduleExpr,
		Timezone:     t.Timezone,
		StartAt:      formatTime(t.StartAt),
		EndAt:        formatTime(t.EndAt),
		CallbackData: string(t.CallbackData),
		HTTP:         t.HTTP,
		CreatedAt:    formatTime(&t.CreatedAt),
		UpdatedAt:    formatTime(&t.UpdatedAt),
		Version:      t.Version,

		DeleteAfterCompletion: t.DeleteAfterCompletion,
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
		Version:      it.Version,

		DeleteAfterCompletion: it.DeleteAfterCompletion,
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

func idKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}
}

// Get returns the timer with id, or an ENOTFOUND error.
func (s *Store) Get(ctx context.Context, id string) (*Timer, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            idKey(id),
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
func (s *Store) Put(ctx context.Context, t *Timer) (*Timer, bool, error) {
	av, err := attributevalue.MarshalMap(toItem(t))
	if err != nil {
		return nil, false, fmt.Errorf("encode timer %s: %w", t.ID, err)
	}
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
		if k == "id" || k == "createdAt" || k == "version" {
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
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.Table,
		Key:                       idKey(t.ID),
		UpdateExpression:          &expr,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return nil, false, fmt.Errorf("put timer %s: %w", t.ID, err)
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
		Key:                 idKey(id),
		ConditionExpression: aws.String("attribute_exists(id)"),
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
	p := dynamodb.NewQueryPaginator(s.DB, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query due timers in %s: %w", shard, err)
		}
		timers := make([]*Timer, 0, len(out.Items))
		for _, av := range out.Items {
			t, err := fromItem(av)
			if err != nil {
				return err
			}
			timers = append(timers, t)
		}
		if err := page(timers); err != nil {
			return err
		}
	}
	return nil
}

// Advance moves t from the occurrence t.NextFireAt to next. With no next
// occurrence (zero) the timer is completed: it leaves the due index, or is
// deleted when it asked for that. Advance reports false, without error,
// when the timer has changed since it was read (replaced, deleted or
// advanced by another sweep): the other writer wins.
func (s *Store) Advance(ctx context.Context, t *Timer, next time.Time) (bool, error) {
	values := map[string]types.AttributeValue{
		":old":     &types.AttributeValueMemberN{Value: strconv.FormatInt(t.NextFireAt.Unix(), 10)},
		":version": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Version, 10)},
	}
	const cond = "nextFireAt = :old AND version = :version"
	var err error
	switch {
	case next.IsZero() && t.DeleteAfterCompletion:
		_, err = s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 &s.Table,
			Key:                       idKey(t.ID),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeValues: values,
		})
	default:
		expr := "REMOVE nextFireAt"
		if !next.IsZero() {
			expr = "SET nextFireAt = :next"
			values[":next"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(next.Unix(), 10)}
		}
		_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.Table,
			Key:                       idKey(t.ID),
			UpdateExpression:          &expr,
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeValues: values,
		})
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("advance timer %s: %w", t.ID, err)
	}
	return true, nil
}
