package main

// Secrets at delivery: aws-secret(...) placeholders resolved from SSM
// Parameter Store at execution time (cached for SecretTTL), substituted
// into the request, and redacted from every text that could echo them.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// secretCache keeps resolved parameters for Invoker.SecretTTL.
type secretCache struct {
	mu sync.Mutex
	m  map[string]cachedSecret
}

// cachedSecret is one resolved parameter, reused until until.
type cachedSecret struct {
	value string
	until time.Time
}

// redactError is err with redact applied to its text, still a
// permanentError if it was one.
func redactError(err error, secrets map[string]string) error {
	text := redact(err.Error(), secrets)
	if text == err.Error() {
		return err
	}
	var perm permanentError
	if errors.As(err, &perm) {
		return permanentError{errors.New(text)}
	}
	return errors.New(text)
}

// resolve fetches the values of every aws-secret(...) in fields from SSM,
// ten names a call as GetParameters allows, decrypting SecureStrings.
func (inv *Invoker) resolve(ctx context.Context, fields ...string) (map[string]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, f := range fields {
		for _, n := range secretNames(f) {
			if inv.SecretPrefix != "" && !strings.HasPrefix(n, inv.SecretPrefix) {
				return nil, permanentError{Errorf(EINVALID, "aws-secret(%s) is outside the allowed prefix %s", n, inv.SecretPrefix)}
			}
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	values := make(map[string]string, len(names))
	now := inv.now()
	inv.cache.mu.Lock()
	missing := names[:0]
	for _, n := range names {
		if c, ok := inv.cache.m[n]; ok && now.Before(c.until) {
			values[n] = c.value
		} else {
			missing = append(missing, n)
		}
	}
	inv.cache.mu.Unlock()
	for names = missing; len(names) > 0; {
		chunk := names[:min(10, len(names))]
		names = names[len(chunk):]
		out, err := inv.Secrets.GetParameters(ctx, &ssm.GetParametersInput{Names: chunk, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("resolve secrets: %w", err)
		}
		if len(out.InvalidParameters) > 0 {
			return nil, Errorf(EINVALID, "secret parameter %s does not exist", strings.Join(out.InvalidParameters, ", "))
		}
		inv.cache.mu.Lock()
		if inv.cache.m == nil {
			inv.cache.m = map[string]cachedSecret{}
		}
		for _, p := range out.Parameters {
			values[aws.ToString(p.Name)] = aws.ToString(p.Value)
			if inv.SecretTTL > 0 {
				inv.cache.m[aws.ToString(p.Name)] = cachedSecret{aws.ToString(p.Value), now.Add(inv.SecretTTL)}
			}
		}
		inv.cache.mu.Unlock()
	}
	return values, nil
}

// substitute replaces each aws-secret(name) in s with its value.
func substitute(s string, secrets map[string]string) string {
	if len(secrets) == 0 {
		return s
	}
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := secrets[m[len("aws-secret("):len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// minSecretFragment is the shortest part of a secret's value that redact
// removes wherever it appears; a whole value is removed however short.
const minSecretFragment = 6

// redact puts each secret value in s back to its placeholder, for text
// (such as a transport error) that may echo a resolved value. It also
// replaces every run of s, of minSecretFragment bytes or more, that occurs
// anywhere in a value, compared without regard to ASCII case: errors quote
// parts of their input (a port, a host, a path), and a host may come back
// lower-cased. This over-redacts text that merely shares a fragment with a
// secret (such as "https://"), which is the safe side to err on.
func redact(s string, secrets map[string]string) string {
	if len(secrets) == 0 || s == "" {
		return s
	}
	// owner[i] is the secret whose placeholder replaces byte i of s.
	owner := make([]string, len(s))
	lower := asciiLower(s)
	// Longest values first: a value that contains another is attributed
	// to the longer one, as a whole value should be.
	names := slices.SortedFunc(maps.Keys(secrets), func(a, b string) int {
		if d := len(secrets[b]) - len(secrets[a]); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		v := secrets[name]
		if v == "" {
			continue
		}
		lv := asciiLower(v)
		mark := func(i, n int) {
			for j := i; j < i+n; j++ {
				if owner[j] == "" {
					owner[j] = name
				}
			}
		}
		for i := 0; i < len(lower); {
			if strings.HasPrefix(lower[i:], lv) {
				mark(i, len(v))
				i += len(v)
				continue
			}
			n := 0
			for n+1 <= len(lower)-i && n+1 <= len(lv) && strings.Contains(lv, lower[i:i+n+1]) {
				n++
			}
			if n >= minSecretFragment {
				mark(i, n)
				i += n
				continue
			}
			i++
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if owner[i] == "" {
			b.WriteByte(s[i])
			i++
			continue
		}
		name := owner[i]
		for i < len(s) && owner[i] == name {
			i++
		}
		b.WriteString("aws-secret(" + name + ")")
	}
	return b.String()
}

// asciiLower lower-cases ASCII letters only, so that byte offsets into
// the result are offsets into s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// secretPattern finds aws-secret(...) placeholders, the Deployer's syntax.
var secretPattern = regexp.MustCompile(`aws-secret\(([^()]*)\)`)

// secretNames returns the parameter names referenced in s, in order.
func secretNames(s string) []string {
	var names []string
	for _, m := range secretPattern.FindAllStringSubmatch(s, -1) {
		names = append(names, m[1])
	}
	return names
}
