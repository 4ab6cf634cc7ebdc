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

// maxReceiveCount is how often a message is received before its queue's
// redrive policy moves it to the dead-letter queue (as in template.yaml).
const maxReceiveCount = 5

// provision creates the table and queues of names if they are missing, for
// the local stack, and returns a Config naming them. Each queue gets a
// dead-letter queue named "<queue>-dlq".
func provision(ctx context.Context, c awsClients, names StackNames, visibilitySeconds int) (Config, error) {
	cfg := Config{Table: names.Table}
	if err := ensureTable(ctx, c.DynamoDB, names.Table); err != nil {
		return cfg, err
	}
	var err error
	// The invoker dead-letters fire messages itself when their retries run
	// out (up to 185); the redrive policy is only the backstop.
	if cfg.FireQueueURL, cfg.DeadLetterQueueURL, err = ensureQueue(ctx, c.SQS, names.FireQueue, visibilitySeconds, 1000); err != nil {
		return cfg, err
	}
	if cfg.CallbackQueueURL, _, err = ensureQueue(ctx, c.SQS, names.CallbackQueue, visibilitySeconds, maxReceiveCount); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func ensureTable(ctx context.Context, db *dynamodb.Client, table string) error {
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	var nf *ddbtypes.ResourceNotFoundException
	if err == nil || !errors.As(err, &nf) {
		return err
	}
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("shardId"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("nextFireAt"), AttributeType: ddbtypes.ScalarAttributeTypeN},
			{AttributeName: aws.String("group"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("historyOf"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("at"), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName: aws.String(DueIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("shardId"), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String("nextFireAt"), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}, {
			IndexName: aws.String(GroupIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("group"), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}, {
			IndexName: aws.String(HistoryIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String("historyOf"), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String("at"), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	return dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, 2*time.Minute)
}

// ensureQueue creates queue name and its dead-letter queue "<name>-dlq",
// and returns both URLs.
func ensureQueue(ctx context.Context, q *sqs.Client, name string, visibilitySeconds, maxReceives int) (string, string, error) {
	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s-dlq: %w", name, err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("read queue %s-dlq: %w", name, err)
	}
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: &name,
		Attributes: map[string]string{
			"VisibilityTimeout": strconv.Itoa(visibilitySeconds),
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`,
				attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], maxReceives),
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}

// resolveQueues fills in queue URLs that cfg lacks by looking up the
// default names, so `bootstrap invoke` works against a running local stack
// with no configuration.
func resolveQueues(ctx context.Context, q *sqs.Client, cfg *Config, names StackNames) error {
	for _, f := range []struct {
		url  *string
		name string
	}{{&cfg.FireQueueURL, names.FireQueue}, {&cfg.CallbackQueueURL, names.CallbackQueue},
		{&cfg.DeadLetterQueueURL, names.FireQueue + "-dlq"}} {
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
