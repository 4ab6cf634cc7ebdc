package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
)

// The local stand-ins for what CloudFormation would name: the account and
// region every ARN of this test is in, and the stack name (samconfig.toml's).
const (
	iamRegion    = "us-east-1"
	iamAccount   = "123456789012"
	iamPartition = "aws"
	iamStack     = "callclock"
)

// authRequest is one authorisation AWS makes for a call: an action on a
// resource. Via says which part of a call it stands for when a call is
// authorised piece by piece (an item of a transaction, an entry of a
// batch), or who made it when our code did not (Lambda itself).
type authRequest struct {
	Action, Resource, Via string
}

func (r authRequest) String() string {
	s := r.Action + " on " + r.Resource
	if r.Via != "" {
		s += " (" + r.Via + ")"
	}
	return s
}

// iamRecorder records, through a smithy middleware on every SDK client of
// one function, the authorisations AWS would make for each call.
type iamRecorder struct {
	mu      sync.Mutex
	reqs    []authRequest
	unknown []string
}

// middleware is a config.WithAPIOptions option: it sees each operation's
// input before the call is made, so a call moto answers as AWS would
// refuse it is recorded all the same.
func (r *iamRecorder) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("iamRecorder",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			reqs, err := authorisations(in.Parameters)
			r.mu.Lock()
			r.reqs = append(r.reqs, reqs...)
			if err != nil {
				r.unknown = append(r.unknown, awsmiddleware.GetServiceID(ctx)+" "+awsmiddleware.GetOperationName(ctx)+": "+err.Error())
			}
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (r *iamRecorder) requests() []authRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]authRequest(nil), r.reqs...)
}

func tableARN(name *string) string {
	n := aws.ToString(name)
	if strings.HasPrefix(n, "arn:") { // TableName may be an ARN
		return n
	}
	return fmt.Sprintf("arn:%s:dynamodb:%s:%s:table/%s", iamPartition, iamRegion, iamAccount, n)
}

// queueARN is the ARN of the queue at url (.../<account>/<name>).
func queueARN(url string) string {
	parts := strings.Split(strings.TrimRight(url, "/"), "/")
	account := iamAccount
	if len(parts) >= 2 && len(parts[len(parts)-2]) == 12 {
		account = parts[len(parts)-2]
	}
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", iamPartition, iamRegion, account, parts[len(parts)-1])
}

// parameterARN is the ARN of the SSM parameter name; a name that starts
// with "/" gets no second one after "parameter".
func parameterARN(name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s", iamPartition, iamRegion, iamAccount, name)
}

// authorisations says how AWS authorises the call whose input is params.
// Each rule is from AWS's documentation, looked up rather than guessed:
//
//   - DynamoDB, "Using IAM with DynamoDB transactions"
//     (docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html):
//     the Put, Update, Delete and Get items of a transaction are authorised
//     as PutItem, UpdateItem, DeleteItem and GetItem, a ConditionCheck as
//     dynamodb:ConditionCheckItem, each on its own table.
//     ConditionExpression and ReturnValuesOnConditionCheckFailure need no
//     action of their own.
//   - DynamoDB, the API permissions reference (api-permissions-reference.html)
//     and the Service Authorization Reference: BatchWriteItem and
//     BatchGetItem are their own actions on each table they name (a
//     PutItem grant does not cover a BatchWriteItem); Query and Scan with an
//     IndexName are authorised on the index's ARN, table/<t>/index/<i>.
//   - SQS, the AddPermission reference and the Service Authorization
//     Reference: SendMessage, DeleteMessage and ChangeMessageVisibility also
//     grant their batch versions, so each entry of a batch is authorised as
//     the single action; every action but ListQueues is on the queue's ARN,
//     GetQueueUrl included.
//   - SSM, "Restricting access to Parameter Store parameters using IAM
//     policies": ssm:GetParameters on each parameter's ARN. The kms:Decrypt
//     that SSM makes for a SecureString happens inside SSM and cannot be
//     seen from here.
//
// An operation with no rule here is an error: the test does not guess.
func authorisations(params any) ([]authRequest, error) {
	one := func(action, resource string) ([]authRequest, error) {
		return []authRequest{{Action: action, Resource: resource}}, nil
	}
	indexOr := func(table, index *string) string {
		if index != nil {
			return tableARN(table) + "/index/" + *index
		}
		return tableARN(table)
	}
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		return one("dynamodb:GetItem", tableARN(in.TableName))
	case *dynamodb.PutItemInput:
		return one("dynamodb:PutItem", tableARN(in.TableName))
	case *dynamodb.UpdateItemInput:
		return one("dynamodb:UpdateItem", tableARN(in.TableName))
	case *dynamodb.DeleteItemInput:
		return one("dynamodb:DeleteItem", tableARN(in.TableName))
	case *dynamodb.QueryInput:
		return one("dynamodb:Query", indexOr(in.TableName, in.IndexName))
	case *dynamodb.ScanInput:
		return one("dynamodb:Scan", indexOr(in.TableName, in.IndexName))
	case *dynamodb.TransactWriteItemsInput:
		var reqs []authRequest
		for k, it := range in.TransactItems {
			via := fmt.Sprintf("TransactWriteItems item %d", k+1)
			switch {
			case it.Put != nil:
				reqs = append(reqs, authRequest{"dynamodb:PutItem", tableARN(it.Put.TableName), via})
			case it.Update != nil:
				reqs = append(reqs, authRequest{"dynamodb:UpdateItem", tableARN(it.Update.TableName), via})
			case it.Delete != nil:
				reqs = append(reqs, authRequest{"dynamodb:DeleteItem", tableARN(it.Delete.TableName), via})
			case it.ConditionCheck != nil:
				reqs = append(reqs, authRequest{"dynamodb:ConditionCheckItem", tableARN(it.ConditionCheck.TableName), via})
			default:
				return reqs, fmt.Errorf("%s is empty", via)
			}
		}
		return reqs, nil
	case *dynamodb.TransactGetItemsInput:
		var reqs []authRequest
		for k, it := range in.TransactItems {
			if it.Get == nil {
				return reqs, fmt.Errorf("TransactGetItems item %d is empty", k+1)
			}
			reqs = append(reqs, authRequest{"dynamodb:GetItem", tableARN(it.Get.TableName), fmt.Sprintf("TransactGetItems item %d", k+1)})
		}
		return reqs, nil
	case *dynamodb.BatchWriteItemInput:
		var reqs []authRequest
		for _, table := range sortedKeys(in.RequestItems) {
			for k := range in.RequestItems[table] {
				reqs = append(reqs, authRequest{"dynamodb:BatchWriteItem", tableARN(&table), fmt.Sprintf("BatchWriteItem entry %d", k+1)})
			}
		}
		return reqs, nil
	case *dynamodb.BatchGetItemInput:
		var reqs []authRequest
		for _, table := range sortedKeys(in.RequestItems) {
			reqs = append(reqs, authRequest{"dynamodb:BatchGetItem", tableARN(&table), "BatchGetItem"})
		}
		return reqs, nil

	case *sqs.SendMessageInput:
		return one("sqs:SendMessage", queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.SendMessageBatchInput:
		var reqs []authRequest
		for k := range in.Entries {
			reqs = append(reqs, authRequest{"sqs:SendMessage", queueARN(aws.ToString(in.QueueUrl)), fmt.Sprintf("SendMessageBatch entry %d", k+1)})
		}
		return reqs, nil
	case *sqs.ReceiveMessageInput:
		return one("sqs:ReceiveMessage", queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.DeleteMessageInput:
		return one("sqs:DeleteMessage", queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.DeleteMessageBatchInput:
		var reqs []authRequest
		for k := range in.Entries {
			reqs = append(reqs, authRequest{"sqs:DeleteMessage", queueARN(aws.ToString(in.QueueUrl)), fmt.Sprintf("DeleteMessageBatch entry %d", k+1)})
		}
		return reqs, nil
	case *sqs.ChangeMessageVisibilityInput:
		return one("sqs:ChangeMessageVisibility", queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.ChangeMessageVisibilityBatchInput:
		var reqs []authRequest
		for k := range in.Entries {
			reqs = append(reqs, authRequest{"sqs:ChangeMessageVisibility", queueARN(aws.ToString(in.QueueUrl)),
				fmt.Sprintf("ChangeMessageVisibilityBatch entry %d", k+1)})
		}
		return reqs, nil
	case *sqs.GetQueueAttributesInput:
		return one("sqs:GetQueueAttributes", queueARN(aws.ToString(in.QueueUrl)))
	case *sqs.GetQueueUrlInput:
		account := iamAccount
		if in.QueueOwnerAWSAccountId != nil {
			account = *in.QueueOwnerAWSAccountId
		}
		return one("sqs:GetQueueUrl", fmt.Sprintf("arn:%s:sqs:%s:%s:%s", iamPartition, iamRegion, account, aws.ToString(in.QueueName)))

	case *ssm.GetParametersInput:
		var reqs []authRequest
		for _, n := range in.Names {
			reqs = append(reqs, authRequest{"ssm:GetParameters", parameterARN(n), ""})
		}
		return reqs, nil
	case *ssm.GetParameterInput:
		return one("ssm:GetParameter", parameterARN(aws.ToString(in.Name)))
	}
	return nil, fmt.Errorf("the test has no rule for how AWS authorises %T; look it up and add one", params)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// globMatch matches s against an IAM pattern, where * is any run of
// characters and ? any one.
func globMatch(pattern, s string) bool {
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p, mark = star+1, mark+1
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// iamStatement is one statement of a role's policies, intrinsics resolved.
type iamStatement struct {
	Source, Sid, Effect                      string
	Action, NotAction, Resource, NotResource []string
	Condition                                map[string]any
}

func (s *iamStatement) String() string {
	if s.Sid != "" {
		return s.Source + " " + s.Sid
	}
	return s.Source
}

// matchesAction: IAM compares action names without regard to case.
func (s *iamStatement) matchesAction(action string) bool {
	matchAny := func(pats []string) bool {
		for _, p := range pats {
			if globMatch(strings.ToLower(p), strings.ToLower(action)) {
				return true
			}
		}
		return false
	}
	if s.NotAction != nil {
		return !matchAny(s.NotAction)
	}
	return matchAny(s.Action)
}

// matchesResource: ARNs are compared with case.
func (s *iamStatement) matchesResource(arn string) bool {
	matchAny := func(pats []string) bool {
		for _, p := range pats {
			if globMatch(p, arn) {
				return true
			}
		}
		return false
	}
	if s.NotResource != nil {
		return !matchAny(s.NotResource)
	}
	return matchAny(s.Resource)
}

// decide evaluates req as IAM does for one identity's policies: an
// explicit Deny wins, then any Allow, and otherwise it is denied. A
// statement with a Condition that applies to req cannot be evaluated here,
// and is an error rather than a guess.
func decide(stmts []*iamStatement, req authRequest) (allowed bool, by []*iamStatement, err error) {
	var allows []*iamStatement
	for _, s := range stmts {
		if !s.matchesAction(req.Action) || !s.matchesResource(req.Resource) {
			continue
		}
		if s.Condition != nil {
			return false, nil, fmt.Errorf("%s applies to %s but has a Condition this test cannot evaluate", s, req)
		}
		if s.Effect == "Deny" {
			return false, []*iamStatement{s}, nil
		}
		allows = append(allows, s)
	}
	return len(allows) > 0, allows, nil
}

// stringList reads a policy element that is one string or a list of them.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a string", e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is neither a string nor a list", v)
}

// parsePolicy reads the statements of one resolved policy document,
// refusing anything this test does not know how to evaluate.
func parsePolicy(source string, doc any) ([]*iamStatement, error) {
	d, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: policy document is not an object", source)
	}
	raw := d["Statement"]
	if m, ok := raw.(map[string]any); ok {
		raw = []any{m}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: Statement is not a list", source)
	}
	var out []*iamStatement
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: statement %d is not an object", source, i)
		}
		s := &iamStatement{Source: source}
		for k, v := range m {
			var err error
			switch k {
			case "Sid":
				s.Sid, _ = v.(string)
			case "Effect":
				s.Effect, _ = v.(string)
			case "Action":
				s.Action, err = stringList(v)
			case "NotAction":
				s.NotAction, err = stringList(v)
			case "Resource":
				s.Resource, err = stringList(v)
			case "NotResource":
				s.NotResource, err = stringList(v)
			case "Condition":
				s.Condition, ok = v.(map[string]any)
				if !ok {
					err = fmt.Errorf("Condition is not an object")
				}
			default: // Principal, NotPrincipal: not in an identity policy
				err = fmt.Errorf("element %s is not evaluated by this test", k)
			}
			if err != nil {
				return nil, fmt.Errorf("%s statement %d: %w", source, i, err)
			}
		}
		switch {
		case s.Effect != "Allow" && s.Effect != "Deny":
			return nil, fmt.Errorf("%s statement %d: Effect %q", source, i, s.Effect)
		case (s.Action == nil) == (s.NotAction == nil):
			return nil, fmt.Errorf("%s statement %d: needs exactly one of Action and NotAction", source, i)
		case (s.Resource == nil) == (s.NotResource == nil):
			return nil, fmt.Errorf("%s statement %d: needs exactly one of Resource and NotResource", source, i)
		}
		for _, r := range append(append([]string{}, s.Resource...), s.NotResource...) {
			if strings.Contains(r, "${") { // a policy variable such as ${aws:username}
				return nil, fmt.Errorf("%s statement %d: resource %s has a policy variable this test cannot evaluate", source, i, r)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// managedPolicies are the documents of the AWS managed policies SAM
// attaches to the roles it generates, as AWS publishes them. A managed
// policy ARN not listed here fails the test: its grants would go unchecked.
//
//   - AWSLambdaBasicExecutionRole, v1 (the default since 2015-04-09): the AWS
//     Managed Policy Reference,
//     docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
//   - AWSLambdaSQSQueueExecutionRole, v1 (the default since 2018-06-14): the
//     dump of AWS's managed policies that moto ships,
//     getmoto/moto moto/iam/aws_managed_policies.py; the Lambda developer
//     guide ("AWS Lambda execution role") describes it as permission to read
//     a message from an SQS queue. The template no longer attaches it (see
//     TestTemplateFireQueueMapping); it stays here so that a template that
//     brings it back is still checked.
var managedPolicies = map[string]string{
	"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}`,
	"arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Action":["sqs:ReceiveMessage","sqs:DeleteMessage","sqs:GetQueueAttributes","logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}`,
}

// iamFunction is one Lambda function of the deployed template, built as
// Lambda would build it here: its environment, its role's statements, and
// SDK clients that record every call into its own recorder.
type iamFunction struct {
	env      map[string]string
	stmts    []*iamStatement
	rec      *iamRecorder
	router   *Router
	log      *syncBuffer
	logGroup string
	// lambdaCalls are the calls Lambda makes with this function's role on
	// its behalf, which no client of ours sees (see lambdaServiceCalls).
	lambdaCalls []authRequest
}

// lambdaServiceCalls are what Lambda itself does with a function's role:
//
//   - Every function's output goes to CloudWatch Logs, into a stream of the
//     log group its LoggingConfig names: logs:CreateLogStream and
//     logs:PutLogEvents. Their resource is the stream,
//     arn:aws:logs:<region>:<account>:log-group:<group>:log-stream:<stream>
//     (the Service Authorization Reference's log-stream type), which is why
//     Lambda's own policy template grants log-group:<group>:*. The log
//     groups exist (the template makes them), so logs:CreateLogGroup is not
//     needed.
//   - An SQS event source mapping reads its queue with the function's role:
//     sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on the
//     queue (the SQS developer guide, "Configuring an Amazon SQS queue to
//     trigger an AWS Lambda function": the Lambda execution role must
//     include them). The test plays that poller with clients of its own, so
//     these are declared rather than recorded.
func lambdaServiceCalls(logGroup string, esmQueues []string) []authRequest {
	stream := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:log-stream:2026/03/02/[$LATEST]0123456789abcdef0123456789abcdef",
		iamPartition, iamRegion, iamAccount, logGroup)
	calls := []authRequest{
		{"logs:CreateLogStream", stream, "Lambda, the function's log stream"},
		{"logs:PutLogEvents", stream, "Lambda, the function's log stream"},
	}
	for _, q := range esmQueues {
		for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} {
			calls = append(calls, authRequest{a, q, "Lambda's SQS event source mapping"})
		}
	}
	return calls
}

// iamParamOverrides are the parameters not left at their defaults.
// AllowPrivateTargets is true because every target and webhook of this test
// listens on loopback; it changes no IAM grant.
var iamParamOverrides = map[string]string{"AllowPrivateTargets": "true"}

// iamStackEnv is the deployed template on moto_server: the resources it
// names, resolved, and one iamFunction per Lambda function.
type iamStackEnv struct {
	tpl       map[string]any
	local     *cfnEval   // the template resolved to this stack
	harness   awsClients // the test's own clients: provisioning and reading back, never checked
	names     StackNames
	fireQueue string // URL
	dlq       string // URL
	callback  string // URL
	funcs     map[string]*iamFunction
	triggers  map[string][]string
	esmQueue  map[string][]string // function -> queue ARNs its event source mappings poll
}

// newIAMStack provisions the template's table and queues on moto_server
// under names of this test's own, resolves the deployed template to them,
// and builds each of its functions on the shared clock.
func newIAMStack(t *testing.T, clock *testClock) *iamStackEnv {
	t.Helper()
	tpl := deployedTemplate(t)
	endpoint := needMoto(t)
	ctx := context.Background()
	env := &iamStackEnv{tpl: tpl, harness: motoClients(t, endpoint), names: uniqueNames(t), funcs: map[string]*iamFunction{},
		triggers: map[string][]string{}, esmQueue: map[string][]string{}}
	cfg, err := provision(ctx, env.harness, env.names, deployedQueues())
	if err != nil {
		t.Fatal(err)
	}
	env.fireQueue, env.dlq, env.callback = cfg.FireQueueURL, cfg.DeadLetterQueueURL, cfg.CallbackQueueURL

	// provision makes the template's table and queues under local names.
	tables := map[string]string{"TimerTable": env.names.Table}
	queues := map[string]string{"FireQueue": env.names.FireQueue, "FireDeadLetterQueue": env.names.FireQueue + "-dlq",
		"CallbackQueue": env.names.CallbackQueue, "CallbackDeadLetterQueue": env.names.CallbackQueue + "-dlq"}
	// What the template's names resolve to here, filled in below as each
	// resource is made: Refs (starting with the pseudo parameters) and
	// attributes.
	refs := map[string]string{"AWS::Region": iamRegion, "AWS::AccountId": iamAccount, "AWS::Partition": iamPartition,
		"AWS::StackName": iamStack, "AWS::URLSuffix": "amazonaws.com"}
	attrs := map[string]map[string]string{}
	c := newCfnEval(t, tpl, iamParamOverrides)
	c.stringLeaves = true
	c.resourceRef = func(name string) (any, error) {
		if v, ok := refs[name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("Ref %s: no local value", name)
	}
	c.getAtt = func(logical, attr string) (any, error) {
		if v, ok := attrs[logical][attr]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no local value", logical, attr)
	}
	resources, _ := tpl["Resources"].(map[string]any)
	for _, logical := range sortedKeys(resources) {
		r := resources[logical].(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		prop := func(key string) string {
			v, err := c.resolve(props[key])
			s, _ := v.(string)
			if err != nil || s == "" {
				t.Fatalf("%s.%s: %v", logical, key, err)
			}
			return s
		}
		switch r["Type"] {
		case "AWS::DynamoDB::Table":
			name, ok := tables[logical]
			if !ok {
				t.Fatalf("the template has a table %s this test does not provision", logical)
			}
			refs[logical] = name
			attrs[logical] = map[string]string{"Arn": tableARN(&name)}
		case "AWS::SQS::Queue":
			name, ok := queues[logical]
			if !ok {
				t.Fatalf("the template has a queue %s this test does not provision", logical)
			}
			out, err := env.harness.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: &name})
			if err != nil {
				t.Fatal(err)
			}
			u := aws.ToString(out.QueueUrl)
			refs[logical] = u
			attrs[logical] = map[string]string{"Arn": queueARN(u), "QueueName": name, "QueueUrl": u}
		case "AWS::Logs::LogGroup":
			name := prop("LogGroupName")
			refs[logical] = name
			attrs[logical] = map[string]string{"Arn": fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s:*", iamPartition, iamRegion, iamAccount, name)}
		case "AWS::Lambda::Function":
			name := prop("FunctionName")
			refs[logical] = name
			attrs[logical] = map[string]string{"Arn": fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", iamPartition, iamRegion, iamAccount, name)}
		}
	}
	env.local = c

	// Each function's triggers, from what may invoke it: the permissions
	// API Gateway and EventBridge invoke through, and event source mappings.
	functionOf := func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["Ref"].(string); ok {
				return r
			}
			if g, ok := x["Fn::GetAtt"].([]any); ok && len(g) == 2 {
				return g[0].(string)
			}
		}
		t.Fatalf("function reference %v", v)
		return ""
	}
	for _, logical := range sortedKeys(resources) {
		r := resources[logical].(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		switch r["Type"] {
		case "AWS::Lambda::Permission":
			fn := functionOf(props["FunctionName"])
			principal, _ := props["Principal"].(string)
			env.triggers[fn] = append(env.triggers[fn], principal)
		case "AWS::Lambda::EventSourceMapping":
			fn := functionOf(props["FunctionName"])
			arn, err := c.resolve(props["EventSourceArn"])
			if err != nil {
				t.Fatal(err)
			}
			env.triggers[fn] = append(env.triggers[fn], "event source mapping "+arn.(string))
			env.esmQueue[fn] = append(env.esmQueue[fn], arn.(string))
		}
	}
	for fn := range env.triggers {
		env.triggers[fn] = dedupe(env.triggers[fn])
	}

	for _, logical := range sortedKeys(resources) {
		if resources[logical].(map[string]any)["Type"] == "AWS::Lambda::Function" {
			env.funcs[logical] = env.buildFunction(t, endpoint, logical, clock)
		}
	}
	return env
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// buildFunction builds function logical from exactly its environment in the
// template, through configFromEnv and newRouter as Lambda would run it, on
// SDK clients that record into its own recorder, with its role's
// statements resolved.
func (env *iamStackEnv) buildFunction(t *testing.T, endpoint, logical string, clock *testClock) *iamFunction {
	t.Helper()
	c := env.local
	props := templateResource(t, env.tpl, logical)
	f := &iamFunction{env: map[string]string{}, rec: &iamRecorder{}, log: &syncBuffer{}}

	vars, _ := props["Environment"].(map[string]any)["Variables"].(map[string]any)
	for k, v := range vars {
		r, err := c.resolve(v)
		if err != nil {
			t.Fatalf("%s environment %s: %v", logical, k, err)
		}
		f.env[k], _ = r.(string)
	}

	role := ""
	if g, ok := props["Role"].(map[string]any)["Fn::GetAtt"].([]any); ok && len(g) == 2 && g[1] == "Arn" {
		role, _ = g[0].(string)
	} else {
		t.Fatalf("%s: Role %v is not a role of the template", logical, props["Role"])
	}
	roleProps := templateResource(t, env.tpl, role)
	managed, _ := roleProps["ManagedPolicyArns"].([]any)
	for _, m := range managed {
		r, err := c.resolve(m)
		if err != nil {
			t.Fatal(err)
		}
		arn, _ := r.(string)
		doc, ok := managedPolicies[arn]
		if !ok {
			t.Fatalf("%s has managed policy %s, whose document this test does not know: add it to managedPolicies", role, arn)
		}
		var d any
		if err := json.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatal(err)
		}
		stmts, err := parsePolicy("managed "+arn[strings.LastIndex(arn, "/")+1:], d)
		if err != nil {
			t.Fatal(err)
		}
		f.stmts = append(f.stmts, stmts...)
	}
	inline, _ := roleProps["Policies"].([]any)
	for _, p := range inline {
		pm := p.(map[string]any)
		doc, err := c.resolve(pm["PolicyDocument"])
		if err != nil {
			t.Fatalf("%s policy %v: %v", role, pm["PolicyName"], err)
		}
		stmts, err := parsePolicy(fmt.Sprintf("inline %v", pm["PolicyName"]), doc)
		if err != nil {
			t.Fatal(err)
		}
		f.stmts = append(f.stmts, stmts...)
	}
	for _, k := range []string{"PermissionsBoundary"} {
		if roleProps[k] != nil {
			t.Fatalf("%s has a %s this test does not evaluate", role, k)
		}
	}

	lg, err := c.resolve(props["LoggingConfig"].(map[string]any)["LogGroup"])
	if err != nil {
		t.Fatal(err)
	}
	f.logGroup = lg.(string)
	f.lambdaCalls = lambdaServiceCalls(f.logGroup, env.esmQueue[logical])

	awsCfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(iamRegion),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return testCreds, nil
		})),
		config.WithAPIOptions([]func(*middleware.Stack) error{f.rec.middleware}))
	if err != nil {
		t.Fatal(err)
	}
	clients := awsClients{DynamoDB: dynamodb.NewFromConfig(awsCfg), SQS: sqs.NewFromConfig(awsCfg), SSM: ssm.NewFromConfig(awsCfg)}.forLocalEndpoint()
	cfg, err := configFromEnv(func(k string) string { return f.env[k] })
	if err != nil {
		t.Fatalf("%s: %v", logical, err)
	}
	f.router = newRouter(cfg, clients, slog.New(slog.NewJSONHandler(f.log, nil)))
	if a, ok := f.router.API.(*API); ok {
		a.Now = clock.Now
	}
	if s, ok := f.router.Sweeper.(*Sweeper); ok {
		s.Now = clock.Now
	}
	if inv, ok := f.router.Invoker.(*Invoker); ok {
		inv.Now = clock.Now
	}
	return f
}

// apiResource is the API Gateway resource a path matches, as template.yaml
// routes it.
func apiResource(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/":
		return "/"
	case len(segs) == 1 && segs[0] == "periodic":
		return "/periodic"
	case len(segs) == 2 && segs[0] == "periodic":
		return "/periodic/{id}"
	case len(segs) == 3 && segs[0] == "periodic":
		return "/periodic/{id}/{action}"
	}
	return "/{proxy+}"
}

// api sends the REST proxy event API Gateway sends after checking a
// request's signature, and returns the status and body.
func (f *iamFunction) api(t *testing.T, method, target, body string) (int, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	req := events.APIGatewayProxyRequest{
		Resource: apiResource(u.Path), Path: u.Path, HTTPMethod: method,
		Headers: map[string]string{"Content-Type": "application/json", "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com"},
		Body:    body,
		RequestContext: events.APIGatewayProxyRequestContext{AccountID: iamAccount, Stage: "prod", RequestID: newID(),
			ResourcePath: apiResource(u.Path), HTTPMethod: method, APIID: "abcdef1234",
			Identity: events.APIGatewayRequestIdentity{UserArn: "arn:aws:iam::" + iamAccount + ":user/deployer"}},
	}
	if q := u.Query(); len(q) > 0 {
		req.QueryStringParameters = map[string]string{}
		for k := range q {
			req.QueryStringParameters[k] = q.Get(k)
		}
	}
	payload, _ := json.Marshal(req)
	out, err := f.router.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Body
}

// apiDoc is api for a call that must answer want with a JSON object.
func (f *iamFunction) apiDoc(t *testing.T, method, target, body string, want int) map[string]any {
	t.Helper()
	code, resp := f.api(t, method, target, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, target, code, resp, want)
	}
	var doc map[string]any
	json.Unmarshal([]byte(resp), &doc)
	return doc
}

// sweep sends the scheduled event EventBridge sends every minute.
func (f *iamFunction) sweep(t *testing.T, eventID string, at time.Time) SweepResult {
	t.Helper()
	ev, _ := json.Marshal(map[string]any{"version": "0", "id": eventID, "detail-type": "Scheduled Event", "source": "aws.events",
		"account": iamAccount, "time": at.UTC().Format(time.RFC3339), "region": iamRegion,
		"resources": []string{"arn:aws:events:us-east-1:" + iamAccount + ":rule/" + iamStack + "-SweepFunctionEveryMinute"}, "detail": map[string]any{}})
	out, err := f.router.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatalf("sweep %s: %v", eventID, err)
	}
	var res SweepResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// esmPoller plays Lambda's SQS event source mapping for one function
// (BatchSize 10, ReportBatchItemFailures): it receives a batch with the
// test's own client, invokes the function with the SQS event Lambda sends,
// and deletes what the function did not report as failed. Each batch
// moves the clock on a second, as time passes between batches, so that
// the outcomes of one occurrence are told apart in its history.
type esmPoller struct {
	f      *iamFunction
	clock  *testClock
	sqs    *sqs.Client
	queue  string            // URL
	bodies map[string]string // timer id -> the body of its first fire message seen
}

func (p *esmPoller) pollOnce(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	out, err := p.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &p.queue, MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) == 0 {
		return 0
	}
	ev := events.SQSEvent{}
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, sqsRecord(m, queueARN(p.queue), iamRegion))
		var fm FireMessage
		if json.Unmarshal([]byte(aws.ToString(m.Body)), &fm) == nil {
			if _, seen := p.bodies[fm.TimerID]; !seen && !fm.Manual {
				p.bodies[fm.TimerID] = aws.ToString(m.Body)
			}
		}
	}
	p.clock.Add(time.Second)
	payload, _ := json.Marshal(ev)
	res, err := p.f.router.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(res, &resp); err != nil {
		t.Fatal(err)
	}
	done := settledEntries(out.Messages, resp)
	if len(done) > 0 {
		if _, err := p.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &p.queue, Entries: done}); err != nil {
			t.Fatal(err)
		}
	}
	return len(out.Messages)
}

// until polls until cond holds, failing after d.
func (p *esmPoller) until(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		if p.pollOnce(t) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// iamHits records what the test's HTTP target and webhook received.
type iamHits struct {
	mu     sync.Mutex
	calls  map[string][]http.Header // path -> headers of each call
	notes  []string                 // texts of webhook posts
	target *httptest.Server
	hook   *httptest.Server
}

func newIAMHits(t *testing.T) *iamHits {
	h := &iamHits{calls: map[string][]http.Header{}}
	h.target = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.calls[r.URL.Path] = append(h.calls[r.URL.Path], r.Header.Clone())
		h.mu.Unlock()
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	// A Slack-compatible incoming webhook: {"text": ...}.
	h.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ Text string }
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &msg) != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.notes = append(h.notes, msg.Text)
		h.mu.Unlock()
	}))
	t.Cleanup(func() { h.target.Close(); h.hook.Close() })
	return h
}

func (h *iamHits) count(path string) int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.calls[path]) }

func (h *iamHits) call(path string, i int) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[path][i]
}

func (h *iamHits) notified(substr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range h.notes {
		if strings.Contains(n, substr) {
			return true
		}
	}
	return false
}

// outcomes is a timer's history through the API, newest first, as
// outcome#attempt.
func outcomes(t *testing.T, f *iamFunction, id string) []string {
	t.Helper()
	doc := f.apiDoc(t, "GET", "/periodic/"+id+"/history", "", 200)
	var o []string
	for _, e := range doc["history"].([]any) {
		m := e.(map[string]any)
		s := fmt.Sprintf("%v#%v", m["outcome"], m["attempt"])
		if d, ok := m["duplicatesSuppressed"]; ok {
			s += fmt.Sprintf("+%v duplicate", d)
		}
		o = append(o, s)
	}
	return o
}

// queueMessages drains a queue with the test's own client and returns the
// TimerId attribute (or body) of each message.
func queueMessages(t *testing.T, c *sqs.Client, queue string) []string {
	t.Helper()
	var got []string
	for range 5 {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &queue, MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageAttributes["TimerId"].StringValue)
			got = append(got, id+" "+aws.ToString(m.Body))
			c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: &queue, ReceiptHandle: m.ReceiptHandle})
		}
	}
	sort.Strings(got)
	return got
}

// TestIntegrationIAMLeastPrivilege runs every part of the service the way
// the deployed template wires it, each function from exactly its own
// environment and on clients that record every AWS call it makes, through
// missed occurrences, deleteAfterCompletion, shard leases, secrets,
// notifications, retries, dead letters, duplicates, paused timers, manual
// fires, groups, history and lists. It then checks each call, authorised as
// AWS authorises it (each item of a transaction and each entry of a batch
// on its own), against exactly the statements the template gives that
// function's role, and fails on any the policies do not allow. Grants no
// call used are logged.
func TestIntegrationIAMLeastPrivilege(t *testing.T) {
	// 09:55: far enough before the timers' 10:01 that each PUT links its
	// occurrence for the sweeper rather than sending it itself.
	clock := newTestClock(time.Date(2026, 3, 2, 9, 55, 0, 0, time.UTC))
	env := newIAMStack(t, clock)
	ctx := context.Background()

	// Each function is driven only by its own trigger.
	wantTriggers := map[string][]string{
		"ApiFunction":    {"apigateway.amazonaws.com"},
		"SweepFunction":  {"events.amazonaws.com"},
		"InvokeFunction": {"event source mapping " + queueARN(env.fireQueue)},
	}
	if diff := cmp.Diff(wantTriggers, env.triggers); diff != "" {
		t.Fatalf("function triggers in the template (-want +got):\n%s", diff)
	}
	apiFn, sweepFn, invokeFn := env.funcs["ApiFunction"], env.funcs["SweepFunction"], env.funcs["InvokeFunction"]
	if apiFn == nil || sweepFn == nil || invokeFn == nil || len(env.funcs) != 3 {
		t.Fatalf("functions in the template: %v", sortedKeys(env.funcs))
	}
	if apiFn.router.API == nil || sweepFn.router.Sweeper == nil || invokeFn.router.Invoker == nil {
		t.Fatalf("a function's environment does not build its part: api %v, sweeper %v, invoker %v",
			apiFn.router.API != nil, sweepFn.router.Sweeper != nil, invokeFn.router.Invoker != nil)
	}
	esm := &esmPoller{f: invokeFn, clock: clock, sqs: env.harness.SQS, queue: env.fireQueue, bodies: map[string]string{}}
	hits := newIAMHits(t)

	const secret = "iam-s3cr3t"
	putSecret(t, env.harness, "/callclock/iam/token", secret)
	putSecret(t, env.harness, "/callclock/iam/webhook", hits.hook.URL+"/slack")

	// 09:55: the timers, all due at 10:01 (minute 1 of the hour, or at()).
	timers := map[string]string{
		// An HTTP target with a secret header; a webhook from a secret, told of successes too.
		"iam-http": `{"minuteOfHour":1,"group":"iam-g","http":{"url":"` + hits.target.URL + `/ok","headers":{"Authorization":"Bearer aws-secret(/callclock/iam/token)"}},` +
			`"notify":{"webhook":"aws-secret(/callclock/iam/webhook)","onSuccess":true}}`,
		// Callback data for the callback queue.
		"iam-callback": `{"minuteOfHour":1,"group":"iam-g","timerCallbackData":{"hello":"iam"}}`,
		// A failing target: one retry, then the dead-letter queue and a notification.
		"iam-retry": `{"schedule":"cron(1 10 2 * ? *)","overlap":"skip","pauseAfterFailures":1,"retry":{"maxAttempts":1,"maxAgeSeconds":600},"http":{"url":"` + hits.target.URL + `/broken"},` +
			`"notify":{"webhook":"` + hits.hook.URL + `/slack"}}`,
		// A one-shot that deletes itself once its occurrence is delivered.
		"iam-once": `{"schedule":"at(2026-03-02T10:01:00)","deleteAfterCompletion":true,"timerCallbackData":{"once":true}}`,
		// One whose only occurrence is missed: the sweeper deletes it.
		"iam-once-missed": `{"schedule":"at(2026-03-02T10:01:00)","deleteAfterCompletion":true,"catchUpSeconds":60,"timerCallbackData":{"once":"missed"}}`,
		// The shortest catch-up window: the 10:02:30 sweep is too late for it.
		"iam-missed": `{"schedule":"cron(1 10 2 * ? *)","catchUpSeconds":60,"timerCallbackData":{"missed":true}}`,
		// Paused after its occurrence is on the queue: the invoker drops it.
		"iam-paused": `{"schedule":"cron(1 10 2 * ? *)","timerCallbackData":{"paused":true}}`,
	}
	for _, id := range sortedKeys(timers) {
		doc := apiFn.apiDoc(t, "PUT", "/periodic/"+id, timers[id], 201)
		if doc["nextFireAt"] != "2026-03-02T10:01:00Z" {
			t.Fatalf("%s: nextFireAt %v, want 10:01", id, doc["nextFireAt"])
		}
	}
	apiFn.apiDoc(t, "PUT", "/periodic/iam-paused", timers["iam-paused"], 200) // a replacement
	listed := func(target string) []string {
		t.Helper()
		var ids []string
		for _, tm := range apiFn.apiDoc(t, "GET", target, "", 200)["timers"].([]any) {
			ids = append(ids, tm.(map[string]any)["id"].(string))
		}
		sort.Strings(ids)
		return ids
	}
	if got := listed("/periodic?group=iam-g"); !cmp.Equal(got, []string{"iam-callback", "iam-http"}) {
		t.Errorf("GET /periodic?group=iam-g: %v", got)
	}
	if got := listed("/periodic?limit=500"); !cmp.Equal(got, sortedKeys(timers)) {
		t.Errorf("GET /periodic: %v, want %v", got, sortedKeys(timers))
	}

	// 10:02:30: the first sweep reads from 09:55 (the first PUT started
	// it) to 10:04; it sends five occurrences and links their timers' next
	// ones (11:01) in a batch, and skips iam-missed and iam-once-missed, 90
	// s late for their 60 s window, recording each as missed in a
	// transaction that also links iam-missed's next occurrence and deletes
	// iam-once-missed; iam-once is kept for the invoker to delete.
	clock.Set(time.Date(2026, 3, 2, 10, 2, 30, 0, time.UTC))
	if diff := cmp.Diff(SweepResult{Minutes: 10, Due: 7, Enqueued: 5, Missed: 2}, sweepFn.sweep(t, "iam-event-1", clock.Now())); diff != "" {
		t.Fatalf("sweep (-want +got):\n%s", diff)
	}
	// The same event again: every shard's lease says it was swept.
	if diff := cmp.Diff(SweepResult{Skipped: 1}, sweepFn.sweep(t, "iam-event-1", clock.Now())); diff != "" {
		t.Errorf("repeated sweep event (-want +got):\n%s", diff)
	}
	for range 1 {
		out, err := env.harness.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &env.names.Table, Key: sweepKey(), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if ev, _ := out.Item["lastEventId"].(*ddbtypes.AttributeValueMemberS); ev == nil || ev.Value != "iam-event-1" {
			t.Errorf("the sweep's state: %v, want lastEventId iam-event-1", out.Item)
		}
	}
	missed := apiFn.apiDoc(t, "GET", "/periodic/iam-missed", "", 200)
	if missed["missedCount"] != 1.0 || missed["lastMissedAt"] != "2026-03-02T10:01:00Z" || missed["nextFireAt"] != "2026-04-02T10:01:00Z" { // monthly
		t.Errorf("iam-missed after the sweep: missedCount %v lastMissedAt %v nextFireAt %v", missed["missedCount"], missed["lastMissedAt"], missed["nextFireAt"])
	}
	if got := outcomes(t, apiFn, "iam-missed"); !cmp.Equal(got, []string{"missed#0"}) {
		t.Errorf("iam-missed history %v, want the missed occurrence", got)
	}
	if code, body := apiFn.api(t, "GET", "/periodic/iam-once-missed", ""); code != 404 {
		t.Errorf("iam-once-missed after its last occurrence was missed: %d %s, want 404 (deleteAfterCompletion)", code, body)
	}
	if doc := apiFn.apiDoc(t, "GET", "/periodic/iam-once", "", 200); doc["state"] != "completed" {
		t.Errorf("iam-once after its last occurrence was sent: %v, want it completed until delivered", doc)
	}
	if doc := apiFn.apiDoc(t, "GET", "/periodic/iam-http", "", 200); doc["nextFireAt"] != "2026-03-02T11:01:00Z" {
		t.Errorf("iam-http after the sweep: nextFireAt %v, want 11:01", doc["nextFireAt"])
	}

	// Paused while its occurrence waits on the queue.
	if doc := apiFn.apiDoc(t, "POST", "/periodic/iam-paused/pause", `{"reason":"iam test"}`, 200); doc["state"] != "paused" {
		t.Fatalf("pause iam-paused: %v", doc)
	}

	// The invoker: iam-http delivered with its secret and notified through
	// the secret webhook; iam-callback on the callback queue; iam-paused
	// dropped; iam-retry failed, its retry delayed by a visibility change.
	esm.until(t, "the first deliveries", 30*time.Second, func() bool {
		return hits.count("/ok") == 1 && hits.count("/broken") == 1 && hits.notified("timer iam-http") &&
			strings.Contains(invokeFn.log.String(), `"timerId":"iam-paused"`) &&
			regexp.MustCompile(`"msg":"delivered","timerId":"iam-once"`).MatchString(invokeFn.log.String())
	})
	// Delivered, iam-once deletes itself.
	if code, body := apiFn.api(t, "GET", "/periodic/iam-once", ""); code != 404 {
		t.Errorf("iam-once after its last occurrence was delivered: %d %s, want 404 (deleteAfterCompletion)", code, body)
	}
	if got := hits.call("/ok", 0).Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("iam-http target got Authorization %q, want the resolved secret", got)
	}
	if !regexp.MustCompile(`"msg":"stale occurrence dropped","timerId":"iam-paused"[^\n]*"reason":"timer paused"`).MatchString(invokeFn.log.String()) {
		t.Errorf("iam-paused was not dropped as paused:\n%s", invokeFn.log.String())
	}
	// The retry, after the visibility change, fails again: dead-lettered.
	esm.until(t, "iam-retry's dead letter", 30*time.Second, func() bool {
		return hits.count("/broken") == 2 && hits.notified("timer iam-retry")
	})
	if !strings.Contains(invokeFn.log.String(), `"msg":"delivery failed; will retry","timerId":"iam-retry"`) {
		t.Errorf("iam-retry was not retried")
	}
	if got := queueMessages(t, env.harness.SQS, env.dlq); len(got) != 1 || !strings.HasPrefix(got[0], "iam-retry ") {
		t.Errorf("dead-letter queue: %v, want iam-retry's occurrence", got)
	}
	if got := outcomes(t, apiFn, "iam-retry"); !cmp.Equal(got, []string{"failed#2"}) { // one occurrence, its last attempt
		t.Errorf("iam-retry history %v", got)
	}

	// The callback occurrence delivered again, as a second copy would be:
	// the claim drops it and the history says so.
	dup, ok := esm.bodies["iam-callback"]
	if !ok {
		t.Fatal("iam-callback's fire message was never received")
	}
	if _, err := env.harness.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &env.fireQueue, MessageBody: &dup}); err != nil {
		t.Fatal(err)
	}
	esm.until(t, "the duplicate to be suppressed", 30*time.Second, func() bool {
		return strings.Contains(invokeFn.log.String(), `"msg":"duplicate suppressed","timerId":"iam-callback"`)
	})
	if got := outcomes(t, apiFn, "iam-callback"); !cmp.Equal(got, []string{"delivered#1+1 duplicate"}) {
		t.Errorf("iam-callback history %v", got)
	}
	if got := queueMessages(t, env.harness.SQS, env.callback); len(got) == 0 || !slices.Contains(got, `iam-callback {"hello":"iam"}`) {
		t.Errorf("callback queue: %v, want iam-callback's data once", got)
	} else if n := countPrefix(got, "iam-callback "); n != 1 {
		t.Errorf("callback queue holds iam-callback %d times, want once: %v", n, got)
	}

	// The group: paused, listed as paused, fired by hand while paused (the
	// manual fire is delivered), resumed.
	if doc := apiFn.apiDoc(t, "POST", "/groups/iam-g/pause", `{"reason":"deploy 9"}`, 200); doc["timers"] != 2.0 || doc["changed"] != 2.0 {
		t.Errorf("group pause: %v", doc)
	}
	if got := listed("/periodic?group=iam-g&state=paused"); !cmp.Equal(got, []string{"iam-callback", "iam-http"}) {
		t.Errorf("paused timers of iam-g: %v", got)
	}
	fired := apiFn.apiDoc(t, "POST", "/periodic/iam-http/fire", "", 202)
	esm.until(t, "the manual fire", 30*time.Second, func() bool { return hits.count("/ok") == 2 })
	if got := hits.call("/ok", 1).Get("Idempotency-Key"); got != fired["idempotencyKey"] || !strings.HasPrefix(got, "iam-http/manual/") {
		t.Errorf("manual fire delivered with key %q, response %v", got, fired)
	}
	if doc := apiFn.apiDoc(t, "POST", "/groups/iam-g/resume", "", 200); doc["changed"] != 2.0 {
		t.Errorf("group resume: %v", doc)
	}
	if doc := apiFn.apiDoc(t, "POST", "/periodic/iam-paused/resume", "", 200); doc["state"] != "active" {
		t.Errorf("resume iam-paused: %v", doc)
	}
	if got := outcomes(t, apiFn, "iam-http"); len(got) != 2 || got[0] != "delivered#1" || got[1] != "delivered#1" {
		t.Errorf("iam-http history %v, want the manual and the scheduled delivery", got)
	}
	if code, body := apiFn.api(t, "DELETE", "/periodic/iam-callback", ""); code != 200 {
		t.Errorf("DELETE iam-callback: %d %s", code, body)
	}
	if code, _ := apiFn.api(t, "GET", "/periodic/iam-callback", ""); code != 404 {
		t.Errorf("GET after DELETE: %d, want 404", code)
	}

	// A destination limit (its API calls), and a timer that obeys it: a
	// fire by hand passes the limiter's slot, count and lease.
	apiFn.apiDoc(t, "PUT", "/limits/iam-dest", `{"perSecond":5,"inFlight":1}`, 201)
	if got := apiFn.apiDoc(t, "GET", "/limits", "", 200)["limits"].([]any); len(got) != 1 {
		t.Errorf("GET /limits: %v", got)
	}
	apiFn.apiDoc(t, "PUT", "/periodic/iam-limited", `{"schedule":"cron(0 9 1 * ? *)","http":{"url":"`+hits.target.URL+`/limited","limitKey":"iam-dest"}}`, 201)
	apiFn.apiDoc(t, "POST", "/periodic/iam-limited/fire", "", 202)
	esm.until(t, "the limited fire", 30*time.Second, func() bool { return hits.count("/limited") == 1 })
	if code, body := apiFn.api(t, "DELETE", "/limits/iam-dest", ""); code != 200 {
		t.Errorf("DELETE /limits/iam-dest: %d %s", code, body)
	}

	// Every function made the calls its scenarios stand for, so that a
	// recorder that saw nothing cannot pass.
	table := tableARN(&env.names.Table)
	mustHave := map[string][]authRequest{
		"ApiFunction": {
			{"dynamodb:UpdateItem", table, ""}, {"dynamodb:GetItem", table, ""}, {"dynamodb:DeleteItem", table, ""},
			{"dynamodb:Scan", table + "/index/byGroup", ""}, {"dynamodb:Query", table + "/index/byGroup", ""}, {"dynamodb:Query", table, ""},
			{"sqs:SendMessage", queueARN(env.fireQueue), ""},
			{"dynamodb:PutItem", table, "TransactWriteItems item 1"}, {"dynamodb:PutItem", table, "TransactWriteItems item 2"},
		},
		"SweepFunction": {
			{"dynamodb:Query", table, ""}, {"dynamodb:UpdateItem", table, ""}, {"dynamodb:BatchWriteItem", table, "BatchWriteItem entry"},
			{"dynamodb:UpdateItem", table, "TransactWriteItems item 1"}, {"dynamodb:UpdateItem", table, "TransactWriteItems item 2"},
			{"dynamodb:DeleteItem", table, "TransactWriteItems item 2"}, {"dynamodb:PutItem", table, "TransactWriteItems item 3"},
			{"sqs:SendMessage", queueARN(env.fireQueue), "SendMessageBatch entry"},
		},
		"InvokeFunction": {
			{"dynamodb:GetItem", table, ""}, {"dynamodb:UpdateItem", table, ""}, {"dynamodb:DeleteItem", table, ""},
			{"dynamodb:DeleteItem", table, "TransactWriteItems item 1"}, // a deleteAfterCompletion timer, with its slots
			{"sqs:SendMessage", queueARN(env.callback), "SendMessageBatch entry"}, {"sqs:SendMessage", queueARN(env.dlq), ""},
			{"sqs:ChangeMessageVisibility", queueARN(env.fireQueue), ""},
			{"ssm:GetParameters", parameterARN("/callclock/iam/token"), ""}, {"ssm:GetParameters", parameterARN("/callclock/iam/webhook"), ""},
		},
	}
	for _, name := range sortedKeys(env.funcs) {
		f := env.funcs[name]
		reqs := f.rec.requests()
		for _, want := range mustHave[name] {
			// Via is a prefix: which item of a transaction a write is
			// depends on how the shards fall.
			found := false
			for _, r := range reqs {
				found = found || r.Action == want.Action && r.Resource == want.Resource &&
					(r.Via == want.Via || want.Via != "" && strings.HasPrefix(r.Via, want.Via))
			}
			if !found {
				t.Errorf("%s never made %s: a scenario did not run as it claims, or the recorder missed it", name, want)
			}
		}
		f.rec.mu.Lock()
		for _, u := range f.rec.unknown {
			t.Errorf("%s: %s", name, u)
		}
		f.rec.mu.Unlock()
	}

	// The check: every call of every function against its own role.
	var denied []string
	for _, name := range sortedKeys(env.funcs) {
		f := env.funcs[name]
		used := map[*iamStatement]map[[2]string]bool{}
		seen := map[authRequest]bool{}
		for _, req := range append(f.rec.requests(), f.lambdaCalls...) {
			if seen[req] {
				continue
			}
			seen[req] = true
			allowed, by, err := decide(f.stmts, req)
			switch {
			case err != nil:
				t.Errorf("%s: %v", name, err)
			case !allowed:
				line := name + ": " + req.String()
				if len(by) > 0 {
					line += " denied by " + by[0].String()
				}
				denied = append(denied, line)
			}
			for _, s := range by {
				if s.Effect != "Allow" {
					continue
				}
				if used[s] == nil {
					used[s] = map[[2]string]bool{}
				}
				for _, a := range s.Action {
					for _, r := range s.Resource {
						if globMatch(strings.ToLower(a), strings.ToLower(req.Action)) && globMatch(r, req.Resource) {
							used[s][[2]string{a, r}] = true
						}
					}
				}
				if s.NotAction != nil || s.NotResource != nil {
					used[s][[2]string{"", ""}] = true
				}
			}
		}
		for _, s := range f.stmts {
			if s.Effect != "Allow" {
				continue
			}
			if s.NotAction != nil || s.NotResource != nil {
				if !used[s][[2]string{"", ""}] {
					t.Logf("%s: granted, never used: %s", name, s)
				}
				continue
			}
			for _, a := range s.Action {
				for _, r := range s.Resource {
					if used[s][[2]string{a, r}] {
						continue
					}
					note := ""
					if strings.EqualFold(a, "kms:Decrypt") {
						note = "; SSM makes this call itself to decrypt a SecureString, which moto cannot show"
					}
					t.Logf("%s: granted, never used: %s on %s (%s)%s", name, a, r, s, note)
				}
			}
		}
	}
	sort.Strings(denied)
	denied = dedupe(denied)
	if len(denied) > 0 {
		t.Errorf("calls the deployed template's policies do not allow:\n%s", strings.Join(denied, "\n"))
	}
}

func countPrefix(s []string, prefix string) int {
	n := 0
	for _, e := range s {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// TestIAMPolicyEvaluation checks the evaluator the integration test relies
// on: wildcards, case, Deny over Allow, NotAction and NotResource, and a
// Condition it refuses to guess about.
func TestIAMPolicyEvaluation(t *testing.T) {
	doc := map[string]any{"Statement": []any{
		map[string]any{"Sid": "A", "Effect": "Allow", "Action": []any{"dynamodb:Get*", "sqs:SendMessage"}, "Resource": "arn:aws:dynamodb:*:*:table/t"},
		map[string]any{"Sid": "Q", "Effect": "Allow", "Action": "dynamodb:Query", "Resource": "arn:aws:dynamodb:us-east-1:1:table/t/index/by?"},
		map[string]any{"Sid": "D", "Effect": "Deny", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/secret"},
		map[string]any{"Sid": "NA", "Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "arn:aws:sqs:us-east-1:1:q"},
		map[string]any{"Sid": "NR", "Effect": "Deny", "Action": "ssm:*", "NotResource": "arn:aws:ssm:us-east-1:1:parameter/ok/*"},
		map[string]any{"Sid": "S", "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"},
		map[string]any{"Sid": "C", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": "ssm.us-east-1.amazonaws.com"}}},
	}}
	stmts, err := parsePolicy("test", doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		action, resource string
		want             bool
	}{
		{"dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t", true},
		{"DynamoDB:getitem", "arn:aws:dynamodb:us-east-1:1:table/t", true},  // actions ignore case
		{"dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/T", false}, // ARNs do not
		{"dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t", false},
		{"dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t/index/x", false},
		{"dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/t/index/byX", true},
		{"dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/t/index/byXY", false},
		{"dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/secret", false},
		{"sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q", true},
		{"dynamodb:GetItem", "arn:aws:sqs:us-east-1:1:q", false},
		{"ssm:GetParameters", "arn:aws:ssm:us-east-1:1:parameter/ok/a", true},
		{"ssm:GetParameters", "arn:aws:ssm:us-east-1:1:parameter/other", false}, // denied by NR
	} {
		got, _, err := decide(stmts, authRequest{Action: tt.action, Resource: tt.resource})
		if err != nil || got != tt.want {
			t.Errorf("%s on %s: allowed %v, %v; want %v", tt.action, tt.resource, got, err, tt.want)
		}
	}
	if _, _, err := decide(stmts, authRequest{Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:1:key/k"}); err == nil {
		t.Error("a statement with a Condition was evaluated without it")
	}
	if _, err := parsePolicy("p", map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}}}); err == nil {
		t.Error("a Principal in an identity policy was accepted")
	}
	for pattern, s := range map[string]string{"a*c": "abbbc", "*": "", "a?c": "abc", "a**": "a", "*/index/*": "t/index/i"} {
		if !globMatch(pattern, s) {
			t.Errorf("globMatch(%q, %q) = false", pattern, s)
		}
	}
	for pattern, s := range map[string]string{"a*c": "abcd", "a?c": "ac", "abc": "ab"} {
		if globMatch(pattern, s) {
			t.Errorf("globMatch(%q, %q) = true", pattern, s)
		}
	}
}

// TestIAMAuthorisations checks how calls are split into what AWS
// authorises: each item of a transaction, each entry of a batch, the index
// of a query, each parameter of GetParameters.
func TestIAMAuthorisations(t *testing.T) {
	tbl := "t"
	q := "http://127.0.0.1:5000/123456789012/q"
	for _, tt := range []struct {
		in   any
		want []authRequest
	}{
		{&dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{TableName: &tbl}}, {Put: &ddbtypes.Put{TableName: &tbl}},
			{Delete: &ddbtypes.Delete{TableName: &tbl}}, {ConditionCheck: &ddbtypes.ConditionCheck{TableName: &tbl}},
		}}, []authRequest{
			{"dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "TransactWriteItems item 1"},
			{"dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "TransactWriteItems item 2"},
			{"dynamodb:DeleteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "TransactWriteItems item 3"},
			{"dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "TransactWriteItems item 4"},
		}},
		{&dynamodb.QueryInput{TableName: &tbl, IndexName: aws.String("byGroup")},
			[]authRequest{{"dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/t/index/byGroup", ""}}},
		{&dynamodb.ScanInput{TableName: &tbl}, []authRequest{{"dynamodb:Scan", "arn:aws:dynamodb:us-east-1:123456789012:table/t", ""}}},
		{&dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{"t": {{}, {}}}}, []authRequest{
			{"dynamodb:BatchWriteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "BatchWriteItem entry 1"},
			{"dynamodb:BatchWriteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t", "BatchWriteItem entry 2"},
		}},
		{&sqs.SendMessageBatchInput{QueueUrl: &q, Entries: []sqstypes.SendMessageBatchRequestEntry{{}, {}}}, []authRequest{
			{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", "SendMessageBatch entry 1"},
			{"sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q", "SendMessageBatch entry 2"},
		}},
		{&sqs.DeleteMessageBatchInput{QueueUrl: &q, Entries: []sqstypes.DeleteMessageBatchRequestEntry{{}}},
			[]authRequest{{"sqs:DeleteMessage", "arn:aws:sqs:us-east-1:123456789012:q", "DeleteMessageBatch entry 1"}}},
		{&sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{{}}},
			[]authRequest{{"sqs:ChangeMessageVisibility", "arn:aws:sqs:us-east-1:123456789012:q", "ChangeMessageVisibilityBatch entry 1"}}},
		{&sqs.GetQueueUrlInput{QueueName: aws.String("q")}, []authRequest{{"sqs:GetQueueUrl", "arn:aws:sqs:us-east-1:123456789012:q", ""}}},
		{&ssm.GetParametersInput{Names: []string{"/callclock/a", "/callclock/b"}}, []authRequest{
			{"ssm:GetParameters", "arn:aws:ssm:us-east-1:123456789012:parameter/callclock/a", ""},
			{"ssm:GetParameters", "arn:aws:ssm:us-east-1:123456789012:parameter/callclock/b", ""},
		}},
	} {
		got, err := authorisations(tt.in)
		if err != nil {
			t.Errorf("%T: %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%T (-want +got):\n%s", tt.in, diff)
		}
	}
	if _, err := authorisations(&sqs.PurgeQueueInput{}); err == nil {
		t.Error("an operation without a rule was authorised")
	}
}

// TestTemplateFireQueueMapping checks the invoker's trigger now that the
// template writes it out instead of using SAM's Type: SQS event: the one
// event source mapping has what SAM generated for that event (same logical
// id, BatchSize 10, no batching window, partial batch failures); no role
// has AWSLambdaSQSQueueExecutionRole, whose SQS grants are on every queue;
// and the polling grants are on the fire queue alone.
func TestTemplateFireQueueMapping(t *testing.T) {
	tpl := deployedTemplate(t)
	resources, _ := tpl["Resources"].(map[string]any)
	mappings := map[string]any{}
	for name, r := range resources {
		if r.(map[string]any)["Type"] == "AWS::Lambda::EventSourceMapping" {
			mappings[name] = r.(map[string]any)["Properties"]
		}
	}
	want := map[string]any{"InvokeFunctionFires": map[string]any{
		"EventSourceArn":                 map[string]any{"Fn::GetAtt": []any{"FireQueue", "Arn"}},
		"FunctionName":                   map[string]any{"Ref": "InvokeFunction"},
		"BatchSize":                      10.0,
		"MaximumBatchingWindowInSeconds": 0.0,
		"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
	}}
	if diff := cmp.Diff(want, mappings); diff != "" {
		t.Errorf("event source mappings (-want +got):\n%s", diff)
	}
	fireQueue := map[string]any{"Fn::GetAtt": []any{"FireQueue", "Arn"}}
	polling := 0
	for _, name := range sortedKeys(resources) {
		r := resources[name].(map[string]any)
		if r["Type"] != "AWS::IAM::Role" {
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		managed, _ := props["ManagedPolicyArns"].([]any)
		for _, m := range managed {
			if s, _ := m.(string); strings.HasSuffix(s, "/AWSLambdaSQSQueueExecutionRole") {
				t.Errorf("%s has %s, which grants SQS polling on every queue", name, s)
			}
		}
		policies, _ := props["Policies"].([]any)
		for _, p := range policies {
			doc, _ := p.(map[string]any)["PolicyDocument"].(map[string]any)
			stmts, _ := doc["Statement"].([]any)
			for _, st := range stmts {
				s := st.(map[string]any)
				actions, _ := stringList(s["Action"])
				for _, a := range actions {
					if a == "sqs:ReceiveMessage" || a == "sqs:DeleteMessage" || a == "sqs:GetQueueAttributes" {
						polling++
						if !cmp.Equal(s["Resource"], fireQueue) {
							t.Errorf("%s grants %s on %v, want the fire queue only", name, a, s["Resource"])
						}
					}
				}
			}
		}
	}
	if polling != 3 {
		t.Errorf("the roles grant %d of sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes, want the 3 the mapping polls with, once", polling)
	}
}
