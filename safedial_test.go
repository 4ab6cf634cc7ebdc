package main

// Tests of safedial.go: the addresses safeAddress refuses, and the HTTP
// client that dials through it.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSafeAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr                          string
		refusedPublic, refusedPrivate bool // with allowPrivate false, true
	}{
		// Link-local and metadata: never.
		{"169.254.169.254:80", true, true},
		{"169.254.0.1:443", true, true},
		{"[fe80::1]:80", true, true},
		{"[fe80::1%eth0]:80", true, true},
		{"[fd00:ec2::254]:80", true, true},
		{"[::ffff:169.254.169.254]:80", true, true},
		{"[::ffff:a9fe:a9fe]:80", true, true},
		// Private, loopback, unspecified: only with allowPrivate.
		{"127.0.0.1:8080", true, false},
		{"[::1]:8080", true, false},
		{"10.0.0.1:80", true, false},
		{"172.16.5.4:80", true, false},
		{"192.168.1.1:80", true, false},
		{"[fc00::1]:80", true, false},
		{"0.0.0.0:80", true, false},
		{"[::ffff:127.0.0.1]:80", true, false},
		// Public.
		{"93.184.216.34:443", false, false},
		{"[2606:2800:220:1::1]:443", false, false},
		// Not an IP address: a name must have been resolved first.
		{"example.com:80", true, true},
	}
	for _, tt := range tests {
		for _, allowPrivate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/allowPrivate=%t", tt.addr, allowPrivate), func(t *testing.T) {
				t.Parallel()
				want := tt.refusedPublic
				if allowPrivate {
					want = tt.refusedPrivate
				}
				err := safeAddress(tt.addr, allowPrivate)
				if (err != nil) != want {
					t.Fatalf("safeAddress(%q, %t) = %v, want refused %t", tt.addr, allowPrivate, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), "refused to dial") {
					t.Errorf("safeAddress(%q, %t) = %q, want it to say \"refused to dial\"", tt.addr, allowPrivate, err)
				}
			})
		}
	}
}

// The dialer hands safeAddress the address with its IPv6 zone, which a URL
// can carry ("http://[fd00:ec2::254%25eth0]/"), and Linux ignores the zone
// of an address that is not link-local: the metadata service is dialled.
func TestSafeAddressZonedMetadata(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"[fd00:ec2::254%eth0]:80", "[fd00:ec2::254%1]:80"} {
		if err := safeAddress(addr, true); err == nil {
			t.Errorf("safeAddress(%q, true) = nil, want refused", addr)
		}
	}
}

func TestSafeClientPrivateTargets(t *testing.T) {
	t.Parallel()
	for _, allowPrivate := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowPrivate=%t", allowPrivate), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Client = newHTTPClient(allowPrivate)
			tg := newTarget(t, answer(http.StatusOK))

			got := e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

			fires := e.store.Fires()
			if len(fires) != 1 {
				t.Fatalf("outcomes recorded %+v, want 1", fires)
			}
			if allowPrivate {
				if diff := cmp.Diff([]string{}, got); diff != "" {
					t.Errorf("failures (-want +got):\n%s", diff)
				}
				if n := len(tg.Received()); n != 1 || fires[0].Fire.Outcome != OutcomeDelivered {
					t.Errorf("target received %d requests, outcome %q; want 1, delivered", n, fires[0].Fire.Outcome)
				}
				return
			}
			if diff := cmp.Diff([]string{"m-1"}, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if !strings.Contains(fires[0].Fire.Error, "refused to dial") {
				t.Errorf("lastFire.Error = %q, want it to say \"refused to dial\"", fires[0].Fire.Error)
			}
		})
	}
}

func TestSafeClientRefusesMetadataForms(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/latest/meta-data/",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Client = newHTTPClient(true) // even with private targets allowed

			if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "GET", url)))); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			fires := e.store.Fires()
			if len(fires) != 1 || !strings.Contains(fires[0].Fire.Error, "refused to dial 169.254.169.254") {
				t.Errorf("outcomes recorded %+v, want one whose error says \"refused to dial 169.254.169.254\"", fires)
			}
		})
	}
}
