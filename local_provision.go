package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// StackNames names the local stack's resources; template.yaml makes the
// same ones in AWS.
type StackNames struct {
	Table, FireQueue, CallbackQueue string
}

// DefaultStackNames are the names `bootstrap local` and `bootstrap invoke`
// use when TABLE_NAME and the queue URLs are not set.
var DefaultStackNames = StackNames{Table: "callclock-timers", FireQueue: "callclock-fire", CallbackQueue: "callclock-callback"}

// QueueSettings are the attributes of one of the stack's queues and of its
// dead-letter queue, as template.yaml deploys them.
type QueueSettings struct {
	// VisibilitySeconds is the queue's VisibilityTimeout.
	VisibilitySeconds int
	// RetentionSeconds is the queue's MessageRetentionPeriod.
	RetentionSeconds int
	// MaxReceiveCount is how often a message is received before the
	// queue's redrive policy moves it to the dead-letter queue.
	MaxReceiveCount int
	// DeadLetterRetentionSeconds is the dead-letter queue's
	// MessageRetentionPeriod.
	DeadLetterRetentionSeconds int
}

// StackQueues are the settings of the stack's two queues.
type StackQueues struct {
	Fire, Callback QueueSettings
}

// SQS's defaults, which template.yaml keeps wherever it sets nothing.
const (
	sqsDefaultVisibilitySeconds = 30
	sqsDefaultRetentionSeconds  = 4 * 24 * 3600
	sqsMaxRetentionSeconds      = 14 * 24 * 3600
)

// deployedQueues returns the queue settings of template.yaml, so that the
// local stack's queues behave as the deployed ones do: a delivery that
// outlasts a 30-second visibility timeout is handed out again while it
// still runs, which 180 seconds (six times the invoker's timeout) rules
// out. TestProvisionMatchesTemplate checks these against the template.
func deployedQueues() StackQueues {
	return StackQueues{
		// The invoker dead-letters fire messages itself when their retries
		// run out (up to 185); the redrive policy is only the backstop.
		Fire: QueueSettings{VisibilitySeconds: 900, RetentionSeconds: sqsDefaultRetentionSeconds,
			MaxReceiveCount: 1000, DeadLetterRetentionSeconds: sqsMaxRetentionSeconds},
		Callback: QueueSettings{VisibilitySeconds: sqsDefaultVisibilitySeconds, RetentionSeconds: sqsDefaultRetentionSeconds,
			MaxReceiveCount: 5, DeadLetterRetentionSeconds: sqsMaxRetentionSeconds},
	}
}

// deadLetterName is the name of queue's dead-letter queue in the local stack.
func deadLetterName(queue string) string { return queue + "-dlq" }

// provision creates the table and queues of names if they are missing, and
// gives the queues the settings of queues, for the local stack; it returns
// a Config naming them. Each queue gets a dead-letter queue named
// deadLetterName(queue).
func provision(ctx context.Context, c awsClients, names StackNames, queues StackQueues) (Config, error) {
	cfg := Config{Table: names.Table}
	if err := ensureTable(ctx, c.DynamoDB, names.Table); err != nil {
		return cfg, err
	}
	var err error
	if cfg.FireQueueURL, cfg.DeadLetterQueueURL, err = ensureQueue(ctx, c.SQS, names.FireQueue, queues.Fire); err != nil {
		return cfg, err
	}
	if cfg.CallbackQueueURL, _, err = ensureQueue(ctx, c.SQS, names.CallbackQueue, queues.Callback); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// tableDefinition is the timer table as template.yaml's TimerTable
// defines it (TestProvisionTableMatchesTemplate compares the two): store.go's
// layout, on demand.
func tableDefinition(table string) *dynamodb.CreateTableInput {
	s := func(name string) ddbtypes.AttributeDefinition {
		return ddbtypes.AttributeDefinition{AttributeName: aws.String(name), AttributeType: ddbtypes.ScalarAttributeTypeS}
	}
	key := func(hash, rng string) []ddbtypes.KeySchemaElement {
		return []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(hash), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(rng), KeyType: ddbtypes.KeyTypeRange},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			s(attrPK), s(attrSK), s(attrTimerGroup), s("id"),
		},
		KeySchema: key(attrPK, attrSK),
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName:  aws.String(GroupIndex),
			KeySchema:  key(attrTimerGroup, "id"),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}},
	}
}

func ensureTable(ctx context.Context, db *dynamodb.Client, table string) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	var nf *ddbtypes.ResourceNotFoundException
	if err == nil || !errors.As(err, &nf) {
		return err
	}
	_, err = db.CreateTable(ctx, tableDefinition(table))
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, 2*time.Minute)
}

// ensureQueue creates queue name and its dead-letter queue, gives both
// the attributes of set, and returns both URLs. A queue that exists
// already (a moto_server left running) gets them too: CreateQueue would
// refuse it attributes that differ from its own.
func ensureQueue(ctx context.Context, q *sqs.Client, name string, set QueueSettings) (string, string, error) {
	dlq, err := ensureQueueAttributes(ctx, q, deadLetterName(name), map[string]string{
		"VisibilityTimeout":      strconv.Itoa(sqsDefaultVisibilitySeconds),
		"MessageRetentionPeriod": strconv.Itoa(set.DeadLetterRetentionSeconds),
	})
	if err != nil {
		return "", "", err
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &dlq, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("read queue %s: %w", deadLetterName(name), err)
	}
	url, err := ensureQueueAttributes(ctx, q, name, map[string]string{
		"VisibilityTimeout":      strconv.Itoa(set.VisibilitySeconds),
		"MessageRetentionPeriod": strconv.Itoa(set.RetentionSeconds),
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`,
			attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], set.MaxReceiveCount),
	})
	return url, dlq, err
}

// ensureQueueAttributes creates queue name if it is missing, sets attrs on
// it and returns its URL.
func ensureQueueAttributes(ctx context.Context, q *sqs.Client, name string, attrs map[string]string) (string, error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: &name})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: out.QueueUrl, Attributes: attrs}); err != nil {
		return "", fmt.Errorf("set the attributes of queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// resolveQueues fills in queue URLs that cfg lacks by looking up the
// default names, so `bootstrap invoke` works against a running local stack
// with no configuration.
func resolveQueues(ctx context.Context, q *sqs.Client, cfg *Config, names StackNames) error {
	for _, f := range []struct {
		url  *string
		name string
	}{{&cfg.FireQueueURL, names.FireQueue}, {&cfg.CallbackQueueURL, names.CallbackQueue},
		{&cfg.DeadLetterQueueURL, deadLetterName(names.FireQueue)}} {
		if *f.url != "" {
			continue
		}
		out, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(f.name)})
		if err != nil {
			return fmt.Errorf("find queue %s (is the local stack running? start it with `make run`): %w", f.name, err)
		}
		*f.url = aws.ToString(out.QueueUrl)
	}
	return nil
}
