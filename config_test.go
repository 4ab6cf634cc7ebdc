package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{Shards: 4, SecretPrefix: "/callclock/", SecretTTL: 30 * time.Second}, ""},
		{"all set", map[string]string{"TABLE_NAME": "t", "FIRE_QUEUE_URL": "f", "CALLBACK_QUEUE_URL": "c", "SHARDS": "100", "SECRET_PREFIX": "/x/y/",
			"FIRE_DLQ_URL": "d", "ALLOW_PRIVATE_TARGETS": "true", "SECRET_CACHE_SECONDS": "0"},
			Config{Table: "t", FireQueueURL: "f", CallbackQueueURL: "c", Shards: 100, SecretPrefix: "/x/y/", DeadLetterQueueURL: "d",
				AllowPrivateTargets: true}, ""},
		{"private targets not a bool", map[string]string{"ALLOW_PRIVATE_TARGETS": "yes"}, Config{}, "ALLOW_PRIVATE_TARGETS must be true or false"},
		{"secret cache too long", map[string]string{"SECRET_CACHE_SECONDS": "3601"}, Config{}, "SECRET_CACHE_SECONDS must be"},
		{"shards zero", map[string]string{"SHARDS": "0"}, Config{}, "SHARDS must be a whole number from 1 to 100"},
		{"shards 101", map[string]string{"SHARDS": "101"}, Config{}, "SHARDS"},
		{"shards text", map[string]string{"SHARDS": "four"}, Config{}, `not "four"`},
		{"prefix without slashes", map[string]string{"SECRET_PREFIX": "callclock"}, Config{}, "SECRET_PREFIX must start and end with '/'"},
		{"prefix root", map[string]string{"SECRET_PREFIX": "/"}, Config{}, "SECRET_PREFIX"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNewRouterParts checks that each function of the stack gets exactly
// the parts its environment configures, as template.yaml sets it up.
func TestNewRouterParts(t *testing.T) {
	tests := []struct {
		name                 string
		cfg                  Config
		api, sweeper, invoke bool
	}{
		{"ApiFunction", Config{Table: "t"}, true, false, false},
		{"SweepFunction", Config{Table: "t", FireQueueURL: "f"}, true, true, false},
		{"InvokeFunction", Config{CallbackQueueURL: "c"}, false, false, true},
		{"local stack", Config{Table: "t", FireQueueURL: "f", CallbackQueueURL: "c"}, true, true, true},
	}
	for _, tc := range tests {
		r := newRouter(tc.cfg, awsClients{}, nil)
		got := [3]bool{r.API != nil, r.Sweeper != nil, r.Invoker != nil}
		if want := [3]bool{tc.api, tc.sweeper, tc.invoke}; got != want {
			t.Errorf("%s: parts (api, sweeper, invoker) = %v, want %v", tc.name, got, want)
		}
	}
}
