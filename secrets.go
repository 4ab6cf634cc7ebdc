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
	names, err := inv.placeholderNames(fields)
	if err != nil {
		return nil, err
	}
	now := inv.now()
	values, missing := inv.cache.lookup(names, now)
	for len(missing) > 0 {
		chunk := missing[:min(10, len(missing))]
		missing = missing[len(chunk):]
		if err := inv.fetchSecrets(ctx, chunk, values, now); err != nil {
			return nil, err
		}
	}
	return values, nil
}

// placeholderNames returns the parameter names fields refer to, each
// once, in order, and refuses one outside SecretPrefix: the prefix is
// checked again at firing.
func (inv *Invoker) placeholderNames(fields []string) ([]string, error) {
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
	return names, nil
}

// lookup returns the values of names still cached at now, and the names
// that are not.
func (c *secretCache) lookup(names []string, now time.Time) (values map[string]string, missing []string) {
	values = make(map[string]string, len(names))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		if s, ok := c.m[n]; ok && now.Before(s.until) {
			values[n] = s.value
		} else {
			missing = append(missing, n)
		}
	}
	return values, missing
}

// fetchSecrets asks SSM for names (ten at most) and adds their values to
// values and, for SecretTTL from now, to the cache.
func (inv *Invoker) fetchSecrets(ctx context.Context, names []string, values map[string]string, now time.Time) error {
	out, err := inv.Secrets.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("resolve secrets: %w", err)
	}
	if len(out.InvalidParameters) > 0 {
		return Errorf(EINVALID, "secret parameter %s does not exist", strings.Join(out.InvalidParameters, ", "))
	}
	inv.cache.mu.Lock()
	defer inv.cache.mu.Unlock()
	if inv.cache.m == nil {
		inv.cache.m = map[string]cachedSecret{}
	}
	for _, p := range out.Parameters {
		values[aws.ToString(p.Name)] = aws.ToString(p.Value)
		if inv.SecretTTL > 0 {
			inv.cache.m[aws.ToString(p.Name)] = cachedSecret{aws.ToString(p.Value), now.Add(inv.SecretTTL)}
		}
	}
	return nil
}

// substitute replaces each aws-secret(name) in s with its value, and
// nothing else: expand with no context.
func substitute(s string, secrets map[string]string) string {
	return expand(s, secrets, nil, nil)
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
	for _, name := range longestFirst(secrets) {
		if v := secrets[name]; v != "" {
			markSecret(owner, lower, name, asciiLower(v))
		}
	}
	return placeholders(s, owner)
}

// longestFirst returns the names of secrets, the longest values first,
// so that a value that contains another is attributed to the longer one,
// as a whole value should be.
func longestFirst(secrets map[string]string) []string {
	return slices.SortedFunc(maps.Keys(secrets), func(a, b string) int {
		if d := len(secrets[b]) - len(secrets[a]); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
}

// markSecret gives to name the bytes of lower (s, lower-cased) that are
// its value lv (lower-cased) or a fragment of it, unless an earlier
// (longer) secret has them already.
func markSecret(owner []string, lower, name, lv string) {
	for i := 0; i < len(lower); {
		n := len(lv)
		if !strings.HasPrefix(lower[i:], lv) {
			if n = fragmentAt(lower[i:], lv); n < minSecretFragment {
				i++
				continue
			}
		}
		for j := i; j < i+n; j++ {
			if owner[j] == "" {
				owner[j] = name
			}
		}
		i += n
	}
}

// fragmentAt is the length of the longest prefix of s that occurs in lv,
// no longer than lv.
func fragmentAt(s, lv string) int {
	n := 0
	for n+1 <= len(s) && n+1 <= len(lv) && strings.Contains(lv, s[:n+1]) {
		n++
	}
	return n
}

// placeholders is s with each run of bytes owner gives to one secret
// replaced by that secret's placeholder.
func placeholders(s string, owner []string) string {
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
