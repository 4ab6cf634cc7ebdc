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

// TestSafeAddressSpecialPurpose covers each class of address the IANA IPv4
// and IPv6 special-purpose registries list as not globally reachable, and
// each way of embedding an IPv4 address in an IPv6 one, with
// ALLOW_PRIVATE_TARGETS false and true. Link-local and the metadata
// service, embedded or not, are refused either way.
func TestSafeAddressSpecialPurpose(t *testing.T) {
	t.Parallel()
	const (
		public  = "dialled"
		private = "refused unless ALLOW_PRIVATE_TARGETS"
		never   = "refused"
	)
	tests := []struct {
		class, addr string
		want        string
	}{
		// IPv4 special-purpose registry.
		{"this network", "0.1.2.3", private},
		{"private-use 10/8", "10.1.2.3", private},
		{"shared address space", "100.64.0.1", private},
		{"shared address space, top", "100.127.255.254", private},
		{"loopback", "127.0.0.2", private},
		{"link local", "169.254.1.1", never},
		{"metadata", "169.254.169.254", never},
		{"private-use 172.16/12", "172.31.0.1", private},
		{"IETF protocol assignments", "192.0.0.1", private},
		{"DS-Lite", "192.0.0.2", private},
		{"TEST-NET-1", "192.0.2.1", private},
		{"6to4 relay anycast", "192.88.99.1", private},
		{"private-use 192.168/16", "192.168.0.1", private},
		{"benchmarking", "198.18.0.1", private},
		{"benchmarking, top", "198.19.255.254", private},
		{"TEST-NET-2", "198.51.100.1", private},
		{"TEST-NET-3", "203.0.113.1", private},
		{"multicast", "224.0.0.251", never}, // link-local multicast
		{"multicast, global scope", "239.1.2.3", private},
		{"reserved", "240.0.0.1", private},
		{"limited broadcast", "255.255.255.255", private},
		{"public IPv4", "93.184.216.34", public},
		{"public IPv4 next to shared space", "100.128.0.1", public},
		{"public IPv4 next to benchmarking", "198.20.0.1", public},
		{"PCP anycast (globally reachable, refused with 192.0.0.0/24)", "192.0.0.9", private},
		{"6a44 relay anycast", "192.88.99.2", private},
		{"AS112-v4 (globally reachable)", "192.31.196.1", public},
		{"AMT (globally reachable)", "192.52.193.1", public},
		{"AS112 direct delegation (globally reachable)", "192.175.48.1", public},
		// IPv6 special-purpose registry and address space.
		{"unspecified", "::", private},
		{"loopback", "::1", private},
		{"discard-only", "100::1", private},
		{"IETF protocol assignments", "2001:2::1", private},
		{"ORCHID", "2001:10::1", private},
		{"documentation", "2001:db8::1", private},
		{"documentation 3fff::/20", "3fff::1", private},
		{"documentation 3fff::/20, top", "3fff:fff:ffff::1", private},
		{"public IPv6 next to 3fff::/20", "3fff:1000::1", public},
		{"SRv6 SIDs", "5f00::1", private},
		{"SRv6 SIDs, top", "5fff:ffff::1", private},
		{"dummy IPv6 prefix", "100:0:0:1::1", private},
		// 2001::/23 and the registry's entries inside it: all refused,
		// the globally reachable ones too (anycast, overlay identifiers).
		{"Teredo", "2001::1", private},
		{"PCP anycast", "2001:1::1", private},
		{"TURN anycast", "2001:1::2", private},
		{"DNS-SD SRP anycast", "2001:1::3", private},
		{"benchmarking", "2001:2::1", private},
		{"AMT", "2001:3::1", private},
		{"AS112-v6", "2001:4:112::1", private},
		{"ORCHIDv2", "2001:20::1", private},
		{"drone remote ID entity tags", "2001:30::1", private},
		{"IETF protocol assignments, top", "2001:1ff:ffff::1", private},
		{"public IPv6 next to 2001::/23", "2001:200::1", public},
		{"AS112 direct delegation (globally reachable)", "2620:4f:8000::1", public},
		{"unique local", "fd12:3456::1", private},
		{"link local", "fe80::1", never},
		{"link-local multicast", "ff02::1", never},
		{"multicast, global scope", "ff0e::1", private},
		{"metadata IPv6", "fd00:ec2::254", never},
		{"public IPv6", "2606:2800:220:1::1", public},
		// IPv4 embedded in IPv6: the embedded address decides, too.
		{"mapped metadata", "::ffff:169.254.169.254", never},
		{"mapped shared space", "::ffff:100.64.0.1", private},
		{"mapped public", "::ffff:93.184.216.34", public},
		{"compatible metadata", "::a9fe:a9fe", never},
		{"compatible public", "::5db8:d822", private}, // deprecated form, not global unicast
		{"NAT64 metadata", "64:ff9b::a9fe:a9fe", never},
		{"NAT64 loopback", "64:ff9b::7f00:1", private},
		{"NAT64 benchmarking", "64:ff9b::c612:1", private},
		{"NAT64 public", "64:ff9b::5db8:d822", public},
		{"local-use NAT64 /96 metadata", "64:ff9b:1::a9fe:a9fe", never},
		{"local-use NAT64 /48 metadata", "64:ff9b:1:a9fe:00a9:fe00::", never},
		{"local-use NAT64 /64 metadata", "64:ff9b:1:0:a9:fea9:fe00:0", never},
		{"local-use NAT64 public", "64:ff9b:1::5db8:d822", private},
		{"6to4 metadata", "2002:a9fe:a9fe::1", never},
		{"6to4 private", "2002:0a00:0001::1", private},
		{"6to4 public", "2002:5db8:d822::1", public},
		{"Teredo client metadata", "2001:0:5db8:d822::5601:5601", never}, // ^a9fe:a9fe
		{"Teredo server metadata", "2001:0:a9fe:a9fe::a247:2ddd", never},
		{"Teredo public client", "2001:0:5db8:d822::a247:2ddd", private},
	}
	for _, tt := range tests {
		t.Run(tt.class+"/"+tt.addr, func(t *testing.T) {
			t.Parallel()
			addr := "[" + tt.addr + "]:443"
			if !strings.Contains(tt.addr, ":") {
				addr = tt.addr + ":443"
			}
			got := []string{}
			for _, allowPrivate := range []bool{false, true} {
				err := safeAddress(addr, allowPrivate)
				if err != nil && !strings.Contains(err.Error(), "refused to dial") {
					t.Errorf("safeAddress(%q, %t) = %q, want it to say \"refused to dial\"", addr, allowPrivate, err)
				}
				got = append(got, fmt.Sprintf("allowPrivate=%t refused=%t", allowPrivate, err != nil))
			}
			want := map[string][]string{
				public:  {"allowPrivate=false refused=false", "allowPrivate=true refused=false"},
				private: {"allowPrivate=false refused=true", "allowPrivate=true refused=false"},
				never:   {"allowPrivate=false refused=true", "allowPrivate=true refused=true"},
			}[tt.want]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: want %s (-want +got):\n%s", tt.class, tt.addr, tt.want, diff)
			}
		})
	}
}
