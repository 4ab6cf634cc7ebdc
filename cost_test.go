package main

// The cost recorder: an aws.HTTPClient that sits under the SDK clients of
// one function (API, sweeper or invoker) and prices every DynamoDB, SQS
// and SSM request it carries as AWS bills it. It knows nothing of
// callclock's table layout: it learns the key schema and the global
// secondary indexes from DescribeTable, and it reads the items a write
// touches before and after the write, so that whatever layout store.go
// has, the write units (index writes included) come from what actually
// changed. TestIntegrationCost (cost_integration_test.go) drives it.
//
// The billing rules, and where each comes from:
//
//   - Item size (CapacityUnitCalculations.html, "DynamoDB item sizes and
//     formats"): the sum of the lengths of the attribute names and values;
//     a string is its UTF-8 bytes; a number is about 1 byte per two
//     significant digits plus 1 (leading and trailing zeroes trimmed); a
//     binary is its raw bytes (not the base64 the wire carries); null and
//     Boolean are 1 byte; a list or map is 3 bytes plus its elements, each
//     element 1 byte more.
//   - Write units (read-write-operations.html, "Capacity unit consumption
//     for write operations"; the on-demand and provisioned pricing pages'
//     key terms): one unit per 1 KB of the item, rounded up; for an update
//     the larger of the item before and after; a delete is sized by the
//     item deleted; a transactional write costs 2 units per 1 KB; a
//     BatchWriteItem is priced as its puts and deletes one by one. A
//     conditional write whose condition fails still consumes write units
//     (the same page; an AWS summary of it reads "based on the larger of
//     the existing or new item size"), but changes no index.
//   - Index writes (GSI.html#GSI.Writes, quoted on repost.aws "dynamodb
//     cost for index writes"): a table write that puts an item into an
//     index costs an index write, one that takes it out costs one, one that
//     changes an index key attribute costs two (a delete of the old index
//     entry and a put of the new one), one that changes only projected
//     attributes costs one, and one that changes nothing projected costs
//     none; each sized by the projected item (the table and index keys plus
//     the projected attributes: all of them for ALL). Index writes are not
//     doubled in a transaction: the transaction commits the table items,
//     and DynamoDB propagates to the index afterwards (issue 11's own
//     figures count them once, too). The AWS whitepaper "Comparing DynamoDB
//     and HBase" (Global Secondary Index Considerations) says the same: a
//     write costs the table's units plus those of updating the indexes.
//   - Read units (read-write-operations.html, "Capacity unit consumption for
//     read operations"): 1 unit per 4 KB for a strongly consistent read,
//     half for an eventually consistent one, 2 for a transactional one; a
//     read of an item that does not exist still costs the minimum; a
//     Query or Scan is the sum of the sizes of the items it reads, rounded
//     up to 4 KB once per request, and a filter expression or a projection
//     does not reduce it (Query.FilterExpression.html: "a Query consumes the
//     same amount of read capacity, regardless of whether a filter
//     expression is present"); a Query on a global secondary index is
//     always eventually consistent and reads the projected items (the same
//     whitepaper: "the sum of all projected attribute sizes across all of
//     the items returned").
//   - SQS (the SQS pricing page, and every pricing summary of it): each
//     request is billed per 64 KB chunk of its payload; a batch is one
//     request (of up to 10 messages) billed by its total payload.
//
// The figures TestIntegrationCost reports per firing come in two kinds for
// reads: exactRCU is what this request was billed, rounding included;
// scaleRCU leaves the per-request 4 KB rounding of Query and Scan out,
// which is what a firing adds to a sweep's page when a page holds
// thousands of occurrences. Likewise for SQS batches: exactSQS is the
// request billed, scaleSQS is a firing's share of a full batch of 10.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// av is one DynamoDB attribute value in its JSON wire form, such as
// {"S":"x"} or {"M":{...}}.
type av = map[string]any

// avItem is an item in its JSON wire form: attribute name to value.
type avItem = map[string]any

// numberSize is the size of a DynamoDB number as its digits: 1 byte per two
// significant digits, rounded up, plus 1 byte; leading and trailing zeroes
// (and the sign and the decimal point) do not count. An exponent form is
// read by its mantissa's digits.
func numberSize(n string) int {
	n = strings.TrimLeft(n, "+-")
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		n = n[:i]
	}
	digits := strings.Replace(n, ".", "", 1)
	digits = strings.TrimLeft(digits, "0")
	digits = strings.TrimRight(digits, "0")
	return (len(digits)+1)/2 + 1
}

// valueSize is the size of one attribute value, without its name.
func valueSize(v any) int {
	m, ok := v.(map[string]any)
	if !ok {
		return 0
	}
	size := 0
	for typ, raw := range m {
		switch typ {
		case "S":
			s, _ := raw.(string)
			size += len(s)
		case "N":
			s, _ := raw.(string)
			size += numberSize(s)
		case "B":
			s, _ := raw.(string)
			size += base64Len(s)
		case "BOOL", "NULL":
			size++
		case "SS":
			for _, e := range asList(raw) {
				s, _ := e.(string)
				size += len(s)
			}
		case "NS":
			for _, e := range asList(raw) {
				s, _ := e.(string)
				size += numberSize(s)
			}
		case "BS":
			for _, e := range asList(raw) {
				s, _ := e.(string)
				size += base64Len(s)
			}
		case "L":
			size += 3
			for _, e := range asList(raw) {
				size += 1 + valueSize(e)
			}
		case "M":
			size += 3
			mm, _ := raw.(map[string]any)
			for k, e := range mm {
				size += 1 + len(k) + valueSize(e)
			}
		}
	}
	return size
}

func asList(v any) []any { l, _ := v.([]any); return l }

// base64Len is the raw length of a base64 value; the wire's base64 does
// not count.
func base64Len(s string) int {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return len(s)
	}
	return len(b)
}

// itemSize is the size of an item: every attribute's name and value. A nil
// item (none there) has size 0.
func itemSize(item avItem) int {
	size := 0
	for name, v := range item {
		size += len(name) + valueSize(v) // names count as UTF-8 bytes
	}
	return size
}

// writeUnits is the standard write units of writing size bytes: one per
// KB, rounded up, at least one.
func writeUnits(size int) float64 {
	return math.Max(1, math.Ceil(float64(size)/1024))
}

// readUnits is the read units of reading size bytes in one request: one per
// 4 KB, rounded up, at least one; half when eventually consistent.
func readUnits(size int, consistent bool) float64 {
	u := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

// sqsRequests is the billed requests of one SQS request carrying payload
// bytes: one per 64 KB chunk, at least one.
func sqsRequests(payload int) float64 {
	return math.Max(1, math.Ceil(float64(payload)/65536))
}

// keySchema is what DescribeTable says of a table or an index: its key
// attributes, and for an index what it projects.
type keySchema struct {
	Name       string   // index name; empty for the table
	Keys       []string // partition key, then the sort key if any
	Projection string   // ALL, KEYS_ONLY or INCLUDE (indexes only)
	NonKey     []string // INCLUDE's attributes
}

// tableSchema is a table's key schema and its global secondary indexes.
type tableSchema struct {
	Table   keySchema
	Indexes []keySchema
}

func (s *tableSchema) index(name string) *keySchema {
	for i := range s.Indexes {
		if s.Indexes[i].Name == name {
			return &s.Indexes[i]
		}
	}
	return nil
}

// parseDescribeTable reads a DescribeTable answer.
func parseDescribeTable(body []byte) (*tableSchema, error) {
	var out struct {
		Table struct {
			KeySchema []struct{ AttributeName, KeyType string }
			GSIs      []struct {
				IndexName  string
				KeySchema  []struct{ AttributeName, KeyType string }
				Projection struct {
					ProjectionType   string
					NonKeyAttributes []string
				}
			} `json:"GlobalSecondaryIndexes"`
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	keys := func(ks []struct{ AttributeName, KeyType string }) []string {
		var k []string
		for _, e := range ks { // HASH first, as DynamoDB lists it, but do not rely on the order
			if e.KeyType == "HASH" {
				k = append([]string{e.AttributeName}, k...)
			} else {
				k = append(k, e.AttributeName)
			}
		}
		return k
	}
	s := &tableSchema{Table: keySchema{Keys: keys(out.Table.KeySchema)}}
	if len(s.Table.Keys) == 0 {
		return nil, fmt.Errorf("DescribeTable gave no key schema: %s", body)
	}
	for _, g := range out.Table.GSIs {
		s.Indexes = append(s.Indexes, keySchema{Name: g.IndexName, Keys: keys(g.KeySchema),
			Projection: g.Projection.ProjectionType, NonKey: g.Projection.NonKeyAttributes})
	}
	return s, nil
}

// keyOf is item's primary key under s (nil when item lacks one of its
// attributes), and keyString a canonical string of it.
func keyOf(item avItem, keys []string) avItem {
	k := avItem{}
	for _, name := range keys {
		v, ok := item[name]
		if !ok {
			return nil
		}
		k[name] = v
	}
	return k
}

func keyString(k avItem) string {
	b, _ := json.Marshal(k) // encoding/json sorts map keys
	return string(b)
}

// projected is the part of item an index holds: the table's and the
// index's keys and the projected attributes. Nil when the item is not in
// the index (it lacks an index key attribute: a sparse index).
func (s *tableSchema) projected(item avItem, ix *keySchema) avItem {
	if item == nil || keyOf(item, ix.Keys) == nil {
		return nil
	}
	if ix.Projection == "ALL" {
		return item
	}
	p := avItem{}
	for _, names := range [][]string{s.Table.Keys, ix.Keys, ix.NonKey} {
		for _, n := range names {
			if v, ok := item[n]; ok {
				p[n] = v
			}
		}
	}
	return p
}

// indexWrites is the write units the index ix takes for a table write that
// turned before into after (either nil: no item).
func (s *tableSchema) indexWrites(ix *keySchema, before, after avItem) float64 {
	pb, pa := s.projected(before, ix), s.projected(after, ix)
	switch {
	case pb == nil && pa == nil:
		return 0
	case pb == nil:
		return writeUnits(itemSize(pa)) // put into the index
	case pa == nil:
		return writeUnits(itemSize(pb)) // deleted from the index
	case keyString(keyOf(pb, ix.Keys)) != keyString(keyOf(pa, ix.Keys)):
		return writeUnits(itemSize(pb)) + writeUnits(itemSize(pa)) // key moved: delete and put
	case keyString(pb) != keyString(pa):
		return writeUnits(max(itemSize(pb), itemSize(pa))) // a projected attribute changed
	}
	return 0
}

// call is one priced request.
type call struct {
	Fn        string // api, sweeper, invoker
	Label     string // the test's stage when it was made
	Service   string // dynamodb, sqs, ssm, lambda
	Op        string // the operation; SQS's with its queue, as SendMessage(callback)
	Synthetic bool   // not a request the code made: priced from a formula (Lambda's poller, invocations)
	Status    int
	Err       string // the error type, when the request failed
	// WCU is the write units per table or index ("" is the table).
	WCU                map[string]float64
	ExactRCU, ScaleRCU float64
	ExactSQS, ScaleSQS float64
	// Invocations and Seconds price Lambda (Service lambda): the share of
	// an invocation, and of its duration, the call stands for.
	Invocations, Seconds float64
}

// costLedger collects the calls of every recorder of a test, and holds the
// lock that lets a recorder read a write's items before and after it with
// nothing else writing in between.
type costLedger struct {
	endpoint string
	raw      *http.Client

	write sync.Mutex // held across a DynamoDB request and its before/after reads

	mu      sync.Mutex
	calls   []call
	label   string
	schemas map[string]*tableSchema
	auth    string // an Authorization header moto accepts, for the raw reads

	// zeroDelays makes the recorders drop SQS delays (see dropDelays);
	// delayed counts the messages sent with one.
	zeroDelays bool
	delayed    atomic.Int64
	// rawNanos is the time spent in the recorders' own reads, which a
	// function's measured duration leaves out (see since).
	rawNanos atomic.Int64
}

// since is the seconds from start, less the recorders' own reads since
// raw0 (a rawNanos reading taken at start): what the function itself took.
func (l *costLedger) since(start time.Time, raw0 int64) float64 {
	return max(0, time.Since(start)-time.Duration(l.rawNanos.Load()-raw0)).Seconds()
}

func newCostLedger(endpoint string) *costLedger {
	return &costLedger{endpoint: endpoint, raw: &http.Client{}, schemas: map[string]*tableSchema{}}
}

// setLabel names the stage the calls from now on belong to.
func (l *costLedger) setLabel(s string) { l.mu.Lock(); l.label = s; l.mu.Unlock() }

func (l *costLedger) add(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Label == "" {
		c.Label = l.label
	}
	l.calls = append(l.calls, c)
}

func (l *costLedger) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls...)
}

// rawDynamoDB sends one DynamoDB JSON request to the endpoint outside every
// recorder, for the before and after images and the re-run queries. moto
// does not check signatures; it reads the region from the Authorization
// header, so the recorders' own is reused.
func (l *costLedger) rawDynamoDB(op string, body any) (map[string]any, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, l.endpoint+"/", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
	l.mu.Lock()
	req.Header.Set("Authorization", l.auth)
	l.mu.Unlock()
	start := time.Now()
	defer func() { l.rawNanos.Add(int64(time.Since(start))) }()
	resp, err := l.raw.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("raw %s: %d %s", op, resp.StatusCode, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("raw %s: %w", op, err)
	}
	return m, nil
}

// schema returns the key schema of table, asking DescribeTable once.
func (l *costLedger) schema(table string) (*tableSchema, error) {
	l.mu.Lock()
	s := l.schemas[table]
	l.mu.Unlock()
	if s != nil {
		return s, nil
	}
	m, err := l.rawDynamoDB("DescribeTable", map[string]any{"TableName": table})
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(m)
	if s, err = parseDescribeTable(b); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.schemas[table] = s
	l.mu.Unlock()
	return s, nil
}

// image reads the item at key, strongly consistent; nil when there is none.
func (l *costLedger) image(table string, key avItem) (avItem, error) {
	m, err := l.rawDynamoDB("GetItem", map[string]any{"TableName": table, "Key": key, "ConsistentRead": true})
	if err != nil {
		return nil, err
	}
	item, _ := m["Item"].(map[string]any)
	return item, nil
}

// recorder is the aws.HTTPClient under one function's SDK clients.
type recorder struct {
	fn   string
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	ledger *costLedger
	seen   atomic.Int64 // requests that reached the recorder
	errs   chan error   // pricing failures, for the test to report
}

// touched is one item a DynamoDB write request names.
type touched struct {
	table    string
	key      avItem
	put      avItem // the item a put writes (for a failed put's size)
	kind     string // put, update, delete, check
	txn      bool
	unproced bool
	before   avItem
	after    avItem
}

// Do prices and forwards one request.
func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.seen.Add(1)
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	target := req.Header.Get("X-Amz-Target")
	if target == "" {
		// The query protocol (older SQS clients): Action=SendMessage&...
		if q, err := url.ParseQuery(string(body)); err == nil && q.Get("Action") != "" {
			target = "AmazonSQS." + q.Get("Action")
		}
	}
	service, op, _ := strings.Cut(target, ".")
	switch {
	case strings.HasPrefix(service, "DynamoDB"):
		service = "dynamodb"
	case service == "AmazonSQS":
		service = "sqs"
	case service == "AmazonSSM":
		service = "ssm"
	default:
		service, op = "other", target
	}
	c := call{Fn: r.fn, Service: service, Op: op}
	if service == "sqs" && r.ledger.zeroDelays && (op == "SendMessage" || op == "SendMessageBatch") {
		body = r.dropDelays(req, body)
	}
	if service != "dynamodb" {
		resp, err := r.next.Do(req)
		if err != nil {
			c.Err = err.Error()
			r.ledger.add(c)
			return resp, err
		}
		c.Status = resp.StatusCode
		if service == "sqs" {
			r.priceSQS(&c, body)
		}
		r.ledger.add(c)
		return resp, nil
	}

	if !dynamoPriced[op] {
		select {
		case r.errs <- fmt.Errorf("%s: DynamoDB %s is not priced by the recorder; teach it", r.fn, op):
		default:
		}
	}
	r.ledger.mu.Lock()
	if r.ledger.auth == "" {
		r.ledger.auth = req.Header.Get("Authorization")
	}
	r.ledger.mu.Unlock()
	r.ledger.write.Lock()
	defer r.ledger.write.Unlock()
	var in map[string]any
	json.Unmarshal(body, &in)
	items, err := r.touchedItems(op, in)
	if err == nil {
		for i := range items {
			if items[i].before, err = r.ledger.image(items[i].table, items[i].key); err != nil {
				break
			}
		}
	}
	// Reads are priced before they run: the items they read are what is
	// there now, and nothing else writes meanwhile.
	if err == nil {
		err = r.priceRead(&c, op, in)
	}
	resp, doErr := r.next.Do(req)
	if doErr != nil {
		c.Err = doErr.Error()
		r.ledger.add(c)
		return resp, doErr
	}
	c.Status = resp.StatusCode
	respBody, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if rerr != nil {
		return resp, rerr
	}
	var out map[string]any
	json.Unmarshal(respBody, &out)
	if resp.StatusCode != http.StatusOK {
		t, _ := out["__type"].(string)
		c.Err = t[strings.LastIndex(t, "#")+1:]
	}
	if err == nil && len(items) > 0 {
		for i := range items {
			if items[i].after, err = r.ledger.image(items[i].table, items[i].key); err != nil {
				break
			}
		}
		if err == nil {
			markUnprocessed(items, out)
			err = r.priceWrites(&c, items)
		}
	}
	if err != nil {
		select {
		case r.errs <- fmt.Errorf("%s %s: %w", r.fn, op, err):
		default:
		}
	}
	r.ledger.add(c)
	return resp, nil
}

// dynamoPriced are the DynamoDB operations the recorder prices (the data
// plane) or that cost no units (the control plane). Any other fails the
// test rather than pass for free.
var dynamoPriced = map[string]bool{
	"GetItem": true, "BatchGetItem": true, "TransactGetItems": true, "Query": true, "Scan": true,
	"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
	"DescribeTable": true, "CreateTable": true, "UpdateTable": true, "DeleteTable": true, "ListTables": true,
	"DescribeTimeToLive": true, "UpdateTimeToLive": true, "DescribeContinuousBackups": true,
	"UpdateContinuousBackups": true, "TagResource": true, "ListTagsOfResource": true, "DescribeEndpoints": true,
}

// dropDelays sets every DelaySeconds of an SQS send to 0, and counts the
// sends that asked for one. moto holds a delay in real time, while the
// functions run on the test's fake clock: a delay counted from that clock
// would stall the test for up to 15 minutes. A delay changes no price.
func (r *recorder) dropDelays(req *http.Request, body []byte) []byte {
	var in map[string]any
	if json.Unmarshal(body, &in) != nil {
		return body
	}
	changed := false
	zero := func(m map[string]any) {
		if d, ok := m["DelaySeconds"].(float64); ok && d > 0 {
			m["DelaySeconds"] = 0
			changed = true
			r.ledger.delayed.Add(1)
		}
	}
	zero(in)
	for _, e := range asList(in["Entries"]) {
		if m, ok := e.(map[string]any); ok {
			zero(m)
		}
	}
	if !changed {
		return body
	}
	b, err := json.Marshal(in)
	if err != nil {
		return body
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.ContentLength = int64(len(b))
	return b
}

// touchedItems lists the items a DynamoDB write request names.
func (r *recorder) touchedItems(op string, in map[string]any) ([]touched, error) {
	var items []touched
	addKey := func(table, kind string, keyOrItem avItem, txn bool) error {
		s, err := r.ledger.schema(table)
		if err != nil {
			return err
		}
		k := keyOf(keyOrItem, s.Table.Keys)
		if k == nil {
			return fmt.Errorf("item without the table's key %v", s.Table.Keys)
		}
		t := touched{table: table, key: k, kind: kind, txn: txn}
		if kind == "put" {
			t.put = keyOrItem
		}
		items = append(items, t)
		return nil
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	obj := func(m map[string]any, k string) map[string]any { o, _ := m[k].(map[string]any); return o }
	var err error
	switch op {
	case "PutItem":
		err = addKey(str(in, "TableName"), "put", obj(in, "Item"), false)
	case "UpdateItem":
		err = addKey(str(in, "TableName"), "update", obj(in, "Key"), false)
	case "DeleteItem":
		err = addKey(str(in, "TableName"), "delete", obj(in, "Key"), false)
	case "BatchWriteItem":
		for table, reqs := range obj(in, "RequestItems") {
			for _, rq := range asList(reqs) {
				m, _ := rq.(map[string]any)
				if p := obj(m, "PutRequest"); p != nil {
					err = addKey(table, "put", obj(p, "Item"), false)
				} else if d := obj(m, "DeleteRequest"); d != nil {
					err = addKey(table, "delete", obj(d, "Key"), false)
				}
				if err != nil {
					return nil, err
				}
			}
		}
	case "TransactWriteItems":
		for _, ti := range asList(in["TransactItems"]) {
			m, _ := ti.(map[string]any)
			switch {
			case obj(m, "Put") != nil:
				err = addKey(str(obj(m, "Put"), "TableName"), "put", obj(obj(m, "Put"), "Item"), true)
			case obj(m, "Update") != nil:
				err = addKey(str(obj(m, "Update"), "TableName"), "update", obj(obj(m, "Update"), "Key"), true)
			case obj(m, "Delete") != nil:
				err = addKey(str(obj(m, "Delete"), "TableName"), "delete", obj(obj(m, "Delete"), "Key"), true)
			case obj(m, "ConditionCheck") != nil:
				err = addKey(str(obj(m, "ConditionCheck"), "TableName"), "check", obj(obj(m, "ConditionCheck"), "Key"), true)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return items, err
}

// markUnprocessed marks the BatchWriteItem items DynamoDB left unprocessed:
// they cost nothing this time.
func markUnprocessed(items []touched, out map[string]any) {
	un, _ := out["UnprocessedItems"].(map[string]any)
	for _, reqs := range un {
		for _, rq := range asList(reqs) {
			m, _ := rq.(map[string]any)
			var k avItem
			if p, ok := m["PutRequest"].(map[string]any); ok {
				k, _ = p["Item"].(map[string]any)
			} else if d, ok := m["DeleteRequest"].(map[string]any); ok {
				k, _ = d["Key"].(map[string]any)
			}
			for i := range items {
				if sub := keyOf(k, keysOf(items[i].key)); sub != nil && keyString(sub) == keyString(items[i].key) {
					items[i].unproced = true
				}
			}
		}
	}
}

func keysOf(k avItem) []string {
	var names []string
	for n := range k {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// priceWrites sets c's write units from the items' before and after images.
// A failed request (c.Err) changed nothing: a failed condition (or a
// cancelled transaction) is billed the table's units, anything else
// (throttling, validation, a fault) nothing.
func (r *recorder) priceWrites(c *call, items []touched) error {
	c.WCU = map[string]float64{}
	billedFailure := c.Err == "ConditionalCheckFailedException" || c.Err == "TransactionCanceledException"
	if c.Err != "" && !billedFailure {
		return nil
	}
	for _, it := range items {
		if it.unproced {
			continue
		}
		s, err := r.ledger.schema(it.table)
		if err != nil {
			return err
		}
		size := max(itemSize(it.before), itemSize(it.after))
		if it.kind == "put" && c.Err != "" {
			size = max(size, itemSize(it.put))
		}
		if it.kind == "delete" {
			size = itemSize(it.before)
		}
		u := writeUnits(size)
		if it.txn {
			u *= 2
		}
		c.WCU[""] += u
		if c.Err != "" || it.kind == "check" {
			continue
		}
		for i := range s.Indexes {
			if w := s.indexWrites(&s.Indexes[i], it.before, it.after); w > 0 {
				c.WCU[s.Indexes[i].Name] += w
			}
		}
	}
	return nil
}

// priceRead sets c's read units for a read request, from what it reads.
func (r *recorder) priceRead(c *call, op string, in map[string]any) error {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	consistent := func(m map[string]any) bool { b, _ := m["ConsistentRead"].(bool); return b }
	switch op {
	case "GetItem":
		key, _ := in["Key"].(map[string]any)
		item, err := r.ledger.image(str(in, "TableName"), key)
		if err != nil {
			return err
		}
		c.ExactRCU = readUnits(itemSize(item), consistent(in))
		c.ScaleRCU = c.ExactRCU
	case "BatchGetItem":
		reqs, _ := in["RequestItems"].(map[string]any)
		for table, v := range reqs {
			m, _ := v.(map[string]any)
			for _, k := range asList(m["Keys"]) {
				key, _ := k.(map[string]any)
				item, err := r.ledger.image(table, key)
				if err != nil {
					return err
				}
				c.ExactRCU += readUnits(itemSize(item), consistent(m))
			}
		}
		c.ScaleRCU = c.ExactRCU
	case "TransactGetItems":
		for _, ti := range asList(in["TransactItems"]) {
			m, _ := ti.(map[string]any)
			g, _ := m["Get"].(map[string]any)
			key, _ := g["Key"].(map[string]any)
			item, err := r.ledger.image(str(g, "TableName"), key)
			if err != nil {
				return err
			}
			c.ExactRCU += 2 * readUnits(itemSize(item), true)
		}
		c.ScaleRCU = c.ExactRCU
	case "Query", "Scan":
		size, err := r.queryBytes(op, in)
		if err != nil {
			return err
		}
		cons := consistent(in) && str(in, "IndexName") == ""
		c.ExactRCU = readUnits(size, cons)
		c.ScaleRCU = float64(size) / 4096
		if !cons {
			c.ScaleRCU /= 2
		}
	case "TransactWriteItems":
		// A ConditionCheck is billed as a write (priceWrites), not a read.
	}
	return nil
}

// queryBytes re-runs a Query or Scan on the raw client without its filter
// and projection, from the same start and with the same limit, so that it
// reads exactly the items the request reads, and sums their sizes (the
// projected items, for an index).
func (r *recorder) queryBytes(op string, in map[string]any) (int, error) {
	q := map[string]any{}
	for _, k := range []string{"TableName", "IndexName", "KeyConditionExpression", "ExclusiveStartKey", "Limit",
		"ScanIndexForward", "ConsistentRead", "Segment", "TotalSegments"} {
		if v, ok := in[k]; ok {
			q[k] = v
		}
	}
	// Keep only the names and values the key condition uses: DynamoDB
	// refuses unused ones.
	kc, _ := in["KeyConditionExpression"].(string)
	for _, field := range []string{"ExpressionAttributeNames", "ExpressionAttributeValues"} {
		m, _ := in[field].(map[string]any)
		used := map[string]any{}
		for k, v := range m {
			if strings.Contains(kc, k) {
				used[k] = v
			}
		}
		if len(used) > 0 {
			q[field] = used
		}
	}
	if ix, _ := in["IndexName"].(string); ix != "" {
		q["Select"] = "ALL_PROJECTED_ATTRIBUTES"
	}
	out, err := r.ledger.rawDynamoDB(op, q)
	if err != nil {
		return 0, err
	}
	size := 0
	for _, it := range asList(out["Items"]) {
		item, _ := it.(map[string]any)
		size += itemSize(item)
	}
	return size, nil
}

// priceSQS sets c's billed requests from its payload: the message bodies
// and attributes it sends (64 KB chunks), and names the queue.
func (r *recorder) priceSQS(c *call, body []byte) {
	var in struct {
		QueueUrl    string
		MessageBody string
		Attrs       map[string]struct{ DataType, StringValue, BinaryValue string } `json:"MessageAttributes"`
		Entries     []struct {
			MessageBody string
			Attrs       map[string]struct{ DataType, StringValue, BinaryValue string } `json:"MessageAttributes"`
		}
	}
	json.Unmarshal(body, &in)
	c.Op += "(" + queueRole(in.QueueUrl) + ")"
	attrSize := func(m map[string]struct{ DataType, StringValue, BinaryValue string }) int {
		n := 0
		for k, v := range m {
			n += len(k) + len(v.DataType) + len(v.StringValue) + base64Len(v.BinaryValue)
		}
		return n
	}
	payload := len(in.MessageBody) + attrSize(in.Attrs)
	for _, e := range in.Entries {
		payload += len(e.MessageBody) + attrSize(e.Attrs)
	}
	c.ExactSQS = sqsRequests(payload)
	c.ScaleSQS = c.ExactSQS
	if strings.HasSuffix(c.Op, "Batch("+queueRole(in.QueueUrl)+")") && len(in.Entries) > 0 {
		// A firing's share of a full batch of 10 (or of its 64 KB chunks,
		// if the messages are that large).
		c.ScaleSQS = math.Max(float64(len(in.Entries))/10, float64(payload)/65536)
	}
}

// queueRoles maps queue URLs to what they are (fire, callback, dlq), set by
// the test once it has provisioned them.
var queueRoles sync.Map

func queueRole(url string) string {
	if v, ok := queueRoles.Load(url); ok {
		return v.(string)
	}
	return url[strings.LastIndex(url, "/")+1:]
}

// attemptCounter counts the SDK's attempts (one per HTTP request, retries
// included), to check that the recorder saw each one.
type attemptCounter struct{ n atomic.Int64 }

// TestCostUnits checks the size and unit arithmetic against the examples
// of the AWS documentation.
func TestCostUnits(t *testing.T) {
	// CapacityUnitCalculations.html: a string is its name's and its value's
	// UTF-8 bytes; a number 1 byte per two significant digits plus 1;
	// Boolean and null 1 byte; a list or map 3 bytes plus 1 per element.
	item := avItem{
		"id":    av{"S": "abc"},                              // 2 + 3
		"n":     av{"N": "123.4500"},                         // 1 + (5 digits -> 3) + 1
		"zero":  av{"N": "0"},                                // 4 + 1
		"b":     av{"B": "AAEC"},                             // 1 + 3 raw bytes (not 4 base64)
		"ok":    av{"BOOL": true},                            // 2 + 1
		"nil":   av{"NULL": true},                            // 3 + 1
		"l":     av{"L": []any{av{"S": "x"}, av{"N": "12"}}}, // 1 + 3 + (1+1) + (1+2)
		"m":     av{"M": map[string]any{"k": av{"S": "vv"}}}, // 1 + 3 + (1+1+2)
		"émoji": av{"S": "é"},                                // 6 + 2 (UTF-8 bytes)
	}
	want := 5 + 5 + 5 + 4 + 3 + 4 + 9 + 8 + 8
	if got := itemSize(item); got != want {
		t.Errorf("itemSize = %d, want %d", got, want)
	}
	for _, tt := range []struct {
		n    string
		want int
	}{{"1", 2}, {"12", 2}, {"123", 3}, {"-0.00123", 3}, {"1000", 2}, {"1234567890123", 8}, {"1.5e10", 2}} {
		if got := numberSize(tt.n); got != tt.want {
			t.Errorf("numberSize(%s) = %d, want %d", tt.n, got, tt.want)
		}
	}
	// read-write-operations.html and the pricing pages: a 1 KB write is 1
	// unit, 3 KB 3 units, a transactional 3 KB write 6; reading 3,500 bytes
	// costs as 4 KB; an 8 KB read is 2 units strongly consistent, 1
	// eventually consistent, 4 transactional; 10 KB rounds up to 12 KB.
	for _, tt := range []struct {
		got, want float64
		what      string
	}{
		{writeUnits(1024), 1, "1 KB write"},
		{writeUnits(1025), 2, "1 KB + 1 byte write"},
		{writeUnits(3 * 1024), 3, "3 KB write"},
		{2 * writeUnits(3*1024), 6, "3 KB transactional write"},
		{writeUnits(0), 1, "a delete of nothing, at least 1"},
		{readUnits(3500, true), 1, "3,500-byte read"},
		{readUnits(8*1024, true), 2, "8 KB strongly consistent read"},
		{readUnits(8*1024, false), 1, "8 KB eventually consistent read"},
		{2 * readUnits(8*1024, true), 4, "8 KB transactional read"},
		{readUnits(10*1024, true), 3, "10 KB read (12 KB)"},
		{readUnits(0, false), 0.5, "a read of nothing, eventually consistent"},
		{sqsRequests(1200), 1, "a 1.2 KB SQS request"},
		{sqsRequests(256 * 1024), 4, "a 256 KB SQS request: four 64 KB chunks"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %v units, want %v", tt.what, tt.got, tt.want)
		}
	}

	// Index writes (GSI.html#GSI.Writes).
	s := &tableSchema{Table: keySchema{Keys: []string{"pk"}}, Indexes: []keySchema{
		{Name: "due", Keys: []string{"shard", "at"}, Projection: "KEYS_ONLY"},
		{Name: "all", Keys: []string{"group"}, Projection: "ALL"},
	}}
	base := avItem{"pk": av{"S": "t1"}, "shard": av{"S": "s0"}, "at": av{"N": "100"}, "x": av{"S": "1"}}
	with := func(m avItem, k string, v any) avItem {
		c := avItem{}
		for a, b := range m {
			c[a] = b
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	due, all := &s.Indexes[0], &s.Indexes[1]
	for _, tt := range []struct {
		what          string
		ix            *keySchema
		before, after avItem
		want          float64
	}{
		{"put into the index", due, nil, base, 1},
		{"delete from the index", due, base, nil, 1},
		{"index key moved: delete and put", due, base, with(base, "at", av{"N": "160"}), 2},
		{"unprojected attribute changed (KEYS_ONLY)", due, base, with(base, "x", av{"S": "2"}), 0},
		{"leaves a sparse index", due, base, with(base, "at", nil), 1},
		{"not in the index before or after", all, base, with(base, "x", av{"S": "2"}), 0},
		{"any attribute changed (ALL)", all, with(base, "group", av{"S": "g"}), with(with(base, "group", av{"S": "g"}), "x", av{"S": "2"}), 1},
		{"nothing changed (ALL)", all, with(base, "group", av{"S": "g"}), with(base, "group", av{"S": "g"}), 0},
	} {
		if got := s.indexWrites(tt.ix, tt.before, tt.after); got != tt.want {
			t.Errorf("%s: %v index write units, want %v", tt.what, got, tt.want)
		}
	}
	// A 1.5 KB item moved in an ALL index: delete 2 + put 2.
	big := with(with(base, "group", av{"S": "g"}), "x", av{"S": strings.Repeat("a", 1500)})
	if got := s.indexWrites(all, big, with(big, "group", av{"S": "h"})); got != 4 {
		t.Errorf("1.5 KB item moved in an ALL index: %v, want 4", got)
	}

	// DescribeTable, as moto answers it.
	ds, err := parseDescribeTable([]byte(`{"Table":{"KeySchema":[{"AttributeName":"sk","KeyType":"RANGE"},{"AttributeName":"pk","KeyType":"HASH"}],
		"GlobalSecondaryIndexes":[{"IndexName":"g","KeySchema":[{"AttributeName":"a","KeyType":"HASH"}],"Projection":{"ProjectionType":"INCLUDE","NonKeyAttributes":["c"]}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ds.Table.Keys, ",") != "pk,sk" || len(ds.Indexes) != 1 || ds.Indexes[0].Projection != "INCLUDE" {
		t.Errorf("parsed %+v", ds)
	}
	inc := ds.projected(avItem{"pk": av{"S": "1"}, "sk": av{"S": "2"}, "a": av{"S": "3"}, "c": av{"S": "4"}, "d": av{"S": "5"}}, &ds.Indexes[0])
	if len(inc) != 4 || inc["d"] != nil {
		t.Errorf("INCLUDE projection = %v, want pk, sk, a and c", inc)
	}
}
