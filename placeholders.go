package main

// Context placeholders: callclock(name) in an HTTP target's URL, header
// values and body, and in the string values of the callback data, stand
// for what only the attempt knows (when it was scheduled, when it is
// made, which attempt it is). They are checked at PUT by newTimer and
// resolved by the invoker at each attempt, in the same single pass as
// the aws-secret(...) placeholders, so that neither kind of value is ever
// read again as a placeholder. README.md, "Context placeholders", gives
// the reasons for the syntax.

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// contextNames are the placeholders callclock knows, in the order its
// errors list them.
var contextNames = []string{"scheduled-time", "delivery-time", "attempt-number", "idempotency-key", "timer-id", "group"}

// deliveryTimeLayout is RFC 3339 in UTC to the millisecond, always three
// digits, so that the delivery instant has one width.
const deliveryTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// deliveryContext is what the context placeholders of one attempt stand for.
type deliveryContext struct {
	ScheduledAt    time.Time
	DeliveredAt    time.Time
	Attempt        int
	IdempotencyKey string
	TimerID        string
	Group          string
}

// newDeliveryContext is the context of msg's attempt-th attempt; the
// delivery instant is set when the request is built.
func newDeliveryContext(msg *FireMessage, attempt int) deliveryContext {
	return deliveryContext{ScheduledAt: msg.ScheduledAt, Attempt: attempt,
		IdempotencyKey: msg.IdempotencyKey(), TimerID: msg.TimerID, Group: msg.Group}
}

// value is what callclock(name) stands for, and whether callclock knows
// name. Every value is drawn from A-Z a-z 0-9 . _ : / - (ids and groups
// allow no more), so none needs escaping in a header, in JSON text or in
// the body as text; only a URL escapes ':' and '/' where they land.
func (c *deliveryContext) value(name string) (string, bool) {
	switch name {
	case "scheduled-time":
		return c.ScheduledAt.UTC().Format(time.RFC3339), true
	case "delivery-time":
		return c.DeliveredAt.UTC().Format(deliveryTimeLayout), true
	case "attempt-number":
		return strconv.Itoa(c.Attempt), true
	case "idempotency-key":
		return c.IdempotencyKey, true
	case "timer-id":
		return c.TimerID, true
	case "group":
		return c.Group, true
	}
	return "", false
}

// contextPattern finds callclock(...) placeholders.
var contextPattern = regexp.MustCompile(`callclock\(([^()]*)\)`)

// anyPlaceholder finds both kinds at once, for the single pass of expand.
var anyPlaceholder = regexp.MustCompile(`aws-secret\(([^()]*)\)|callclock\(([^()]*)\)`)

// expand resolves every aws-secret(...) (from secrets) and, when dc is
// not nil, every callclock(...) in s, in one pass over s: what a value
// brings in is never scanned again, so a secret cannot be injected by a
// context value, nor the other way round. escape, when not nil, is
// applied to each context value and is given the text of s before it;
// secret values are inserted as they are. A placeholder without a value
// is kept as written.
func expand(s string, secrets map[string]string, dc *deliveryContext, escape func(before, v string) string) string {
	if len(secrets) == 0 && dc == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range anyPlaceholder.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		if m[2] >= 0 { // aws-secret(name)
			if v, ok := secrets[s[m[2]:m[3]]]; ok {
				b.WriteString(v)
				continue
			}
		} else if dc != nil {
			if v, ok := dc.value(s[m[4]:m[5]]); ok {
				if escape != nil {
					v = escape(s[:m[0]], v)
				}
				b.WriteString(v)
				continue
			}
		}
		b.WriteString(s[m[0]:m[1]])
	}
	b.WriteString(s[last:])
	return b.String()
}

// escapeInURL escapes a context value for where it lands in a URL: in
// the query (after the first '?') as a query component, otherwise as one
// path segment ('/' escaped too). checkContextURL refuses placeholders
// anywhere else.
func escapeInURL(before, v string) string {
	if strings.Contains(before, "?") {
		return url.QueryEscape(v)
	}
	return url.PathEscape(v)
}

// checkContext refuses a callclock(...) in s that callclock does not
// know, naming it, and a malformed one: either would otherwise reach the
// target as a literal.
func checkContext(field, s string) error {
	for _, m := range contextPattern.FindAllStringSubmatch(s, -1) {
		if _, ok := (&deliveryContext{}).value(m[1]); !ok {
			return Errorf(EINVALID, "%s: unknown placeholder %s; callclock knows callclock(%s)", field, m[0], strings.Join(contextNames, "), callclock("))
		}
	}
	rest := contextPattern.ReplaceAllString(s, "")
	if i := strings.Index(rest, "callclock("); i >= 0 {
		return Errorf(EINVALID, "%s: malformed placeholder %q: write callclock(name), the name without parentheses", field, snippet(rest[i:], 40))
	}
	return nil
}

// snippet is s cut to at most n bytes, on a rune boundary.
func snippet(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// checkContextURL is checkContext for a URL, where a placeholder may
// stand in the path or the query only: in the scheme or the host it would
// change where the call goes, and a fragment is never sent.
func checkContextURL(field, s string) error {
	if err := checkContext(field, s); err != nil {
		return err
	}
	locs := contextPattern.FindAllStringIndex(s, -1)
	if len(locs) == 0 {
		return nil
	}
	pathAt := len(s)
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexAny(s[i+3:], "/?#"); j >= 0 {
			pathAt = i + 3 + j
		}
	}
	fragmentAt := len(s)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		fragmentAt = i
	}
	for _, l := range locs {
		if l[0] < pathAt || l[0] > fragmentAt {
			return Errorf(EINVALID, "%s: %s may appear in the URL's path or query only", field, s[l[0]:l[1]])
		}
	}
	return nil
}

// jsonStrings calls f with each string literal of data, valid JSON: its
// bounds and whether it is an object's key.
func jsonStrings(data []byte, f func(start, end int, key bool)) {
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start := i
		for i++; i < len(data) && data[i] != '"'; i++ {
			if data[i] == '\\' {
				i++
			}
		}
		end := i + 1
		next := bytes.TrimLeft(data[min(end, len(data)):], " \t\r\n")
		f(start, end, len(next) > 0 && next[0] == ':')
		i = end - 1
	}
}

// mayHoldContext reports whether data could hold a callclock(...): it
// names it, or has an escape that could spell it.
func mayHoldContext(data []byte) bool {
	return bytes.Contains(data, []byte("callclock")) || bytes.Contains(data, []byte(`\u`))
}

// checkCallbackContext checks the placeholders of callback data, which
// may stand in its string values only: a key is not text the receiver
// reads as such.
func checkCallbackContext(data json.RawMessage) error {
	if !mayHoldContext(data) {
		return nil
	}
	var err error
	jsonStrings(data, func(start, end int, key bool) {
		var s string
		if err != nil || json.Unmarshal(data[start:end], &s) != nil || !strings.Contains(s, "callclock(") {
			return
		}
		if key {
			err = Errorf(EINVALID, "timerCallbackData: placeholders may appear in string values only, not in the key %q", snippet(s, 40))
			return
		}
		err = checkContext("timerCallbackData", s)
	})
	return err
}

// expandCallbackData resolves the context placeholders in the string
// values of data. A string that holds none keeps its bytes, so callback
// data without placeholders is delivered exactly as registered; one that
// does is encoded again, its values escaped as JSON requires.
func expandCallbackData(data json.RawMessage, dc *deliveryContext) json.RawMessage {
	if !mayHoldContext(data) {
		return data
	}
	var out []byte
	last := 0
	jsonStrings(data, func(start, end int, key bool) {
		var s string
		if key || json.Unmarshal(data[start:end], &s) != nil || !strings.Contains(s, "callclock(") {
			return
		}
		enc, err := marshalJSON(expand(s, nil, dc, nil))
		if err != nil {
			return
		}
		out = append(append(out, data[last:start]...), enc...)
		last = end
	})
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}
