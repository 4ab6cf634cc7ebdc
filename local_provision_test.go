package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// queueView is what the comparison of the local stack's queues with
// template.yaml's looks at: the attributes the invoker and the redrive
// depend on, and which queue a redrive policy names.
type queueView struct {
	VisibilityTimeout, MessageRetentionPeriod string
	MaxReceiveCount, DeadLetterQueue          string // "" without a redrive policy
}

// templateQueues returns every AWS::SQS::Queue of the deployed template as
// a queueView, with SQS's defaults where the template sets nothing.
func templateQueues(t *testing.T) map[string]queueView {
	t.Helper()
	tpl := deployedTemplate(t)
	str := func(v any) string {
		switch v := v.(type) {
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			return v
		}
		t.Fatalf("unexpected template value %#v", v)
		return ""
	}
	out := map[string]queueView{}
	for logical, r := range tpl["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] != "AWS::SQS::Queue" {
			continue
		}
		props := templateResource(t, tpl, logical)
		q := queueView{VisibilityTimeout: strconv.Itoa(sqsDefaultVisibilitySeconds), MessageRetentionPeriod: strconv.Itoa(sqsDefaultRetentionSeconds)}
		if v, ok := props["VisibilityTimeout"]; ok {
			q.VisibilityTimeout = str(v)
		}
		if v, ok := props["MessageRetentionPeriod"]; ok {
			q.MessageRetentionPeriod = str(v)
		}
		if rp, ok := props["RedrivePolicy"].(map[string]any); ok {
			q.MaxReceiveCount = str(rp["maxReceiveCount"])
			// {"Fn::GetAtt": ["FireDeadLetterQueue", "Arn"]}
			att, _ := rp["deadLetterTargetArn"].(map[string]any)["Fn::GetAtt"].([]any)
			if len(att) != 2 || att[1] != "Arn" {
				t.Fatalf("%s: redrive target %v is not a queue's Arn", logical, rp["deadLetterTargetArn"])
			}
			q.DeadLetterQueue = str(att[0])
		}
		out[logical] = q
	}
	return out
}

// redrive reads a queue's RedrivePolicy attribute: its target's ARN and
// its maxReceiveCount (SQS may give a number or a string).
func redrive(t *testing.T, policy string) (target, maxReceives string) {
	t.Helper()
	var p struct {
		Target string          `json:"deadLetterTargetArn"`
		Max    json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", policy, err)
	}
	maxReceives = string(p.Max)
	if s, err := strconv.Unquote(maxReceives); err == nil {
		maxReceives = s
	}
	return p.Target, maxReceives
}

// TestProvisionMatchesTemplate provisions the local stack on moto_server
// as `bootstrap local` does and checks that each of its queues has the
// attributes template.yaml deploys (GetQueueAttributes against the
// template after the SAM transform), and that `bootstrap invoke` finds
// the same queues, the fire queue's dead-letter queue among them, as the
// invoker's FIRE_DLQ_URL names it.
func TestProvisionMatchesTemplate(t *testing.T) {
	want := templateQueues(t)
	clients := motoClients(t, needMoto(t))
	ctx := context.Background()
	names := uniqueNames(t)
	cfg, err := provision(ctx, clients, names, deployedQueues())
	if err != nil {
		t.Fatal(err)
	}
	callbackDLQ, err := clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(deadLetterName(names.CallbackQueue))})
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{"FireQueue": cfg.FireQueueURL, "FireDeadLetterQueue": cfg.DeadLetterQueueURL,
		"CallbackQueue": cfg.CallbackQueueURL, "CallbackDeadLetterQueue": aws.ToString(callbackDLQ.QueueUrl)}

	got := map[string]queueView{}
	byArn := map[string]string{}
	raw := map[string]map[string]string{}
	for logical, url := range urls {
		out, err := clients.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		raw[logical] = out.Attributes
		byArn[out.Attributes["QueueArn"]] = logical
	}
	for logical, a := range raw {
		q := queueView{VisibilityTimeout: a["VisibilityTimeout"], MessageRetentionPeriod: a["MessageRetentionPeriod"]}
		if rp := a["RedrivePolicy"]; rp != "" {
			var target string
			target, q.MaxReceiveCount = redrive(t, rp)
			q.DeadLetterQueue = byArn[target]
			if q.DeadLetterQueue == "" {
				q.DeadLetterQueue = fmt.Sprintf("unknown queue %s", target)
			}
		}
		got[logical] = q
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("local queues differ from template.yaml's (-template +local):\n%s", diff)
	}

	// `bootstrap invoke` looks the queues up by name; the fire queue's
	// dead-letter queue is the one the template passes the invoker.
	invoke := templateResource(t, deployedTemplate(t), "InvokeFunction")
	env := invoke["Environment"].(map[string]any)["Variables"].(map[string]any)
	refs := map[string]string{}
	for _, v := range []string{"FIRE_QUEUE_URL", "CALLBACK_QUEUE_URL", "FIRE_DLQ_URL"} {
		ref, _ := env[v].(map[string]any)["Ref"].(string)
		refs[v] = urls[ref]
	}
	var found Config
	if err := resolveQueues(ctx, clients.SQS, &found, names); err != nil {
		t.Fatal(err)
	}
	lookedUp := map[string]string{"FIRE_QUEUE_URL": found.FireQueueURL, "CALLBACK_QUEUE_URL": found.CallbackQueueURL,
		"FIRE_DLQ_URL": found.DeadLetterQueueURL}
	if diff := cmp.Diff(refs, lookedUp); diff != "" {
		t.Errorf("bootstrap invoke's queues differ from the invoker's environment in template.yaml (-template +looked up):\n%s", diff)
	}
}

// TestProvisionFixesExistingQueues runs provision over queues an older
// local stack left on a running moto_server with other attributes, as
// `make run` does when it finds moto already running: they get the
// template's attributes rather than a refusal.
func TestProvisionFixesExistingQueues(t *testing.T) {
	clients := motoClients(t, needMoto(t))
	ctx := context.Background()
	names := uniqueNames(t)
	old := deployedQueues()
	old.Fire.VisibilitySeconds, old.Fire.MaxReceiveCount = 30, 5
	if _, err := provision(ctx, clients, names, old); err != nil {
		t.Fatal(err)
	}
	cfg, err := provision(ctx, clients, names, deployedQueues())
	if err != nil {
		t.Fatal(err)
	}
	out, err := clients.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &cfg.FireQueueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy}})
	if err != nil {
		t.Fatal(err)
	}
	_, max := redrive(t, out.Attributes["RedrivePolicy"])
	if v := out.Attributes["VisibilityTimeout"]; v != "900" || max != "1000" {
		t.Errorf("fire queue after a second provision: VisibilityTimeout %s, maxReceiveCount %s; want 900 and 1000", v, max)
	}
}

// ddlKey is one element of a key schema.
type ddlKey struct{ Name, Type string }

// ddlAttribute is one attribute definition.
type ddlAttribute struct{ Name, Type string }

// ddlIndex is a secondary index: its name, key schema and projection.
type ddlIndex struct {
	Name             string
	KeySchema        []ddlKey
	Projection       string
	NonKeyAttributes []string
}

// ddlTable is what TestProvisionTableMatchesTemplate compares of the
// local table and template.yaml's: everything that decides which items and
// queries the table accepts.
type ddlTable struct {
	KeySchema              []ddlKey
	AttributeDefinitions   []ddlAttribute
	GlobalSecondaryIndexes []ddlIndex
	LocalSecondaryIndexes  []ddlIndex
}

// templateTableLayout reads the layout of table properties props of the
// deployed template.
func templateTableLayout(t *testing.T, props map[string]any) ddlTable {
	t.Helper()
	str := func(v any, what string) string {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("TimerTable's %s is %#v, not a string", what, v)
		}
		return s
	}
	list := func(v any, what string) []map[string]any {
		var out []map[string]any
		l, _ := v.([]any)
		for _, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("TimerTable's %s has %#v", what, e)
			}
			out = append(out, m)
		}
		return out
	}
	keys := func(v any, what string) []ddlKey {
		var out []ddlKey
		for _, k := range list(v, what) {
			out = append(out, ddlKey{str(k["AttributeName"], what), str(k["KeyType"], what)})
		}
		return out
	}
	indexes := func(v any, what string) []ddlIndex {
		var out []ddlIndex
		for _, ix := range list(v, what) {
			name := str(ix["IndexName"], what)
			p, _ := ix["Projection"].(map[string]any)
			x := ddlIndex{Name: name, KeySchema: keys(ix["KeySchema"], name+"'s KeySchema"), Projection: str(p["ProjectionType"], name+"'s ProjectionType")}
			nk, _ := p["NonKeyAttributes"].([]any)
			for _, a := range nk {
				x.NonKeyAttributes = append(x.NonKeyAttributes, str(a, name+"'s NonKeyAttributes"))
			}
			out = append(out, x)
		}
		return out
	}
	var l ddlTable
	l.KeySchema = keys(props["KeySchema"], "KeySchema")
	for _, a := range list(props["AttributeDefinitions"], "AttributeDefinitions") {
		l.AttributeDefinitions = append(l.AttributeDefinitions, ddlAttribute{str(a["AttributeName"], "AttributeDefinitions"), str(a["AttributeType"], "AttributeDefinitions")})
	}
	l.GlobalSecondaryIndexes = indexes(props["GlobalSecondaryIndexes"], "GlobalSecondaryIndexes")
	l.LocalSecondaryIndexes = indexes(props["LocalSecondaryIndexes"], "LocalSecondaryIndexes")
	return l
}

// localTableLayout is the layout of the table provision creates.
func localTableLayout(in *dynamodb.CreateTableInput) ddlTable {
	keys := func(ks []ddbtypes.KeySchemaElement) []ddlKey {
		var out []ddlKey
		for _, k := range ks {
			out = append(out, ddlKey{aws.ToString(k.AttributeName), string(k.KeyType)})
		}
		return out
	}
	index := func(name *string, ks []ddbtypes.KeySchemaElement, p *ddbtypes.Projection) ddlIndex {
		x := ddlIndex{Name: aws.ToString(name), KeySchema: keys(ks)}
		if p != nil {
			x.Projection, x.NonKeyAttributes = string(p.ProjectionType), p.NonKeyAttributes
		}
		return x
	}
	l := ddlTable{KeySchema: keys(in.KeySchema)}
	for _, a := range in.AttributeDefinitions {
		l.AttributeDefinitions = append(l.AttributeDefinitions, ddlAttribute{aws.ToString(a.AttributeName), string(a.AttributeType)})
	}
	for _, g := range in.GlobalSecondaryIndexes {
		l.GlobalSecondaryIndexes = append(l.GlobalSecondaryIndexes, index(g.IndexName, g.KeySchema, g.Projection))
	}
	for _, s := range in.LocalSecondaryIndexes {
		l.LocalSecondaryIndexes = append(l.LocalSecondaryIndexes, index(s.IndexName, s.KeySchema, s.Projection))
	}
	return l
}

// TestProvisionTableMatchesTemplate checks that the table the local stack
// creates (tableDefinition) is template.yaml's TimerTable: the same key
// schema, attribute definitions and indexes (names, key schemas,
// projections), so that code tested locally meets the deployed table.
// Attribute definitions, indexes and projected attributes compare in any
// order, as DynamoDB takes them; a key schema's order (HASH, then RANGE)
// is part of it.
func TestProvisionTableMatchesTemplate(t *testing.T) {
	want := templateTableLayout(t, templateResource(t, deployedTemplate(t), "TimerTable"))
	got := localTableLayout(tableDefinition("callclock-test"))
	if diff := cmp.Diff(want, got,
		cmpopts.SortSlices(func(a, b ddlAttribute) bool { return a.Name < b.Name }),
		cmpopts.SortSlices(func(a, b ddlIndex) bool { return a.Name < b.Name }),
		cmpopts.SortSlices(func(a, b string) bool { return a < b }),
		cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the local table differs from template.yaml's TimerTable (-template +local_provision.go):\n%s", diff)
	}
}
