package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

// Tests of the due path's Store calls (due.go) that need no DynamoDB: the
// ones on moto_server are in store_test.go.

// swDynamo is a dynamoAPI whose BatchWriteItem is batch, a func-type fake;
// any other call panics (the embedded interface is nil), so a test says
// which calls it expects.
type swDynamo struct {
	dynamoAPI
	batch func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error)
}

// BatchWriteItem hands in to d.batch.
func (d swDynamo) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return d.batch(in)
}

// TestStorePutLinks: Store.PutLinks writes links in batches of 25
// under their link keys, each batch once, and returns exactly the links
// DynamoDB left unprocessed (throttled), for the sweeper to write again.
func TestStorePutLinks(t *testing.T) {
	t.Parallel()
	var links []DueEntry
	for i := range 60 {
		l := swLinked(swHourly(fmt.Sprintf("t%02d", i), 45), swAt(11, 45, 0))
		if i%2 == 1 {
			l.Parts = 64 // written into a raised hour
		}
		links = append(links, l)
	}
	key := func(item map[string]dbtypes.AttributeValue) string {
		return item[attrPK].(*dbtypes.AttributeValueMemberS).Value + " " + item[attrSK].(*dbtypes.AttributeValueMemberS).Value
	}
	var (
		mu      sync.Mutex // the batches go out at once
		sizes   []int
		written = map[string]int{}
	)
	db := swDynamo{batch: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs := in.RequestItems["timers"]
		sizes = append(sizes, len(reqs))
		out := &dynamodb.BatchWriteItemOutput{}
		for i, r := range reqs {
			if i%4 == 0 { // throttled
				out.UnprocessedItems = map[string][]dbtypes.WriteRequest{"timers": append(out.UnprocessedItems["timers"], r)}
				continue
			}
			written[key(r.PutRequest.Item)]++
			if got := r.PutRequest.Item["expiresAt"]; got == nil {
				t.Errorf("link %s without expiresAt", key(r.PutRequest.Item))
			}
		}
		return out, nil
	}}
	left, err := NewStore(db, "timers").PutLinks(t.Context(), links)
	if err != nil {
		t.Fatalf("PutLinks: %v", err)
	}
	want, wantLeft := map[string]int{}, []DueEntry(nil)
	for i, l := range links {
		if i%25%4 == 0 {
			wantLeft = append(wantLeft, l)
			continue
		}
		want[key(linkKey(l.At/60, l.TimerID, l.Parts))] = 1
	}
	if diff := cmp.Diff(want, written); diff != "" {
		t.Errorf("links written (-want +got):\n%s", diff)
	}
	swSortEntries(left)
	if diff := cmp.Diff(wantLeft, left); diff != "" {
		t.Errorf("links returned unprocessed (-want +got):\n%s", diff)
	}
	slices.Sort(sizes)
	if diff := cmp.Diff([]int{10, 25, 25}, sizes); diff != "" {
		t.Errorf("BatchWriteItem sizes (-want +got):\n%s", diff)
	}
	if k := linkKey(links[1].At/60, links[1].TimerID, 64)[attrPK].(*dbtypes.AttributeValueMemberS).Value; !strings.HasSuffix(k, fmt.Sprintf("#%d", partIn(links[1].TimerID, 64))) {
		t.Errorf("a link of a 64-partition hour is under %s", k)
	}
}
