package main

import (
	"fmt"
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

// TestRouterPartsFromTemplate builds each function of template.yaml from
// exactly its environment there (after the SAM transform), as Lambda runs
// it, and checks that it gets exactly its own part; without a part named,
// as on the local stack, every part whose settings are there.
func TestRouterPartsFromTemplate(t *testing.T) {
	resources := evalTemplate(t, deployedTemplate(t), nil)
	parts := func(r *Router) [3]bool { return [3]bool{r.API != nil, r.Sweeper != nil, r.Invoker != nil} }
	for _, tc := range []struct {
		logical string
		want    [3]bool // api, sweeper, invoker
	}{
		{"ApiFunction", [3]bool{true, false, false}},
		{"SweepFunction", [3]bool{false, true, false}},
		{"InvokeFunction", [3]bool{false, false, true}},
	} {
		props := resources[tc.logical]["Properties"].(map[string]any)
		vars, _ := props["Environment"].(map[string]any)["Variables"].(map[string]any)
		env := map[string]string{}
		for k, v := range vars {
			env[k] = fmt.Sprint(v) // a resolved Ref is the resource's name: set
		}
		cfg, err := configFromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", tc.logical, err)
		}
		r, err := buildRouter(routerOptions{Config: cfg})
		if err != nil {
			t.Fatalf("%s: %v", tc.logical, err)
		}
		if got := parts(r); got != tc.want {
			t.Errorf("%s: parts (api, sweeper, invoker) = %v, want %v", tc.logical, got, tc.want)
		}
	}
	all := newRouter(Config{Table: "t", FireQueueURL: "f", CallbackQueueURL: "c"}, awsClients{}, nil)
	if got := parts(all); got != [3]bool{true, true, true} {
		t.Errorf("local stack: parts %v, want all three", got)
	}
}

// TestRouterPartIncomplete: a function whose part lacks a setting fails
// at init, naming it; an unknown part is refused by the configuration.
func TestRouterPartIncomplete(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Part: partSweeper, Table: "t"}, "CALLCLOCK_PART=sweeper needs FIRE_QUEUE_URL"},
		{Config{Part: partInvoker, Table: "t", FireQueueURL: "f"}, "CALLCLOCK_PART=invoker needs CALLBACK_QUEUE_URL"},
		{Config{Part: partAPI, FireQueueURL: "f"}, "CALLCLOCK_PART=api needs TABLE_NAME"},
	} {
		if _, err := buildRouter(routerOptions{Config: tc.cfg}); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := configFromEnv(func(k string) string { return map[string]string{"CALLCLOCK_PART": "cron"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "CALLCLOCK_PART must be api, sweeper or invoker") {
		t.Errorf("CALLCLOCK_PART=cron: %v", err)
	}
}
