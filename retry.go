package main

// Retries: the retry policy of a delivery, the backoff and sleeping every
// retry loop shares, and the random ids leases and claims are fenced by.

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// retryDelay is how long a message waits before retry number attempt:
// exponential from 2 s, capped at 5 minutes, with equal jitter so that
// the retries of many failed targets spread out.
func retryDelay(attempt int) time.Duration {
	d := min(2*time.Second<<min(attempt-1, 10), 5*time.Minute)
	return (d/2 + time.Duration(rand.Int64N(int64(d/2)+1))).Round(time.Second)
}

// backoff is the wait before retry attempt+1: exponential from 50 ms,
// capped at 2 s, with full jitter so that retries do not march in step.
func backoff(attempt int) time.Duration {
	d := min(50*time.Millisecond<<attempt, 2*time.Second)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newID is a random 128-bit id in hex: a sweep's lease owner, a claim's
// token, a local message id.
func newID() string {
	b := make([]byte, 16)
	crand.Read(b)
	return hex.EncodeToString(b)
}
