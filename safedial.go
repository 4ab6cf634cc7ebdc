package main

// The dialer that refuses unsafe addresses: an HTTP target or a
// notification webhook reaches only globally routable addresses (unless
// ALLOW_PRIVATE_TARGETS), never link-local or metadata ones, whatever
// its name resolves to or an address embeds.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// newHTTPClient returns the client deliveries and notifications use: the
// Deployer's (Callculon's) 20-second connect timeout, no proxy, redirects returned to us
// rather than followed (a timer's target is exactly the URL its owner
// registered), every dialled address checked by safeAddress, and one
// connection per request.
//
// One connection per request, over HTTP/1.1, is what makes one attempt one
// request: http.Transport silently resends a replayable request (GET, HEAD,
// OPTIONS, or any with an Idempotency-Key header, which every delivery
// has) when a reused connection closes before the answer, and the HTTP/2
// transport resends on a refused stream or GOAWAY. A fresh connection is
// never "reused", so the HTTP/1.1 transport never resends on it, and with
// HTTP/2 switched off nothing else does.
func newHTTPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 20 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error { return safeAddress(address, allowPrivate) }}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = dialer.DialContext
	tr.DisableKeepAlives = true
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true) // and neither HTTP/2 form
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// metadataV6 is the EC2 instance metadata service's IPv6 address.
var metadataV6 = netip.MustParseAddr("fd00:ec2::254")

// prefixes parses CIDR blocks for the tables below.
func prefixes(blocks ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(blocks))
	for i, b := range blocks {
		ps[i] = netip.MustParsePrefix(b)
	}
	return ps
}

// notGlobalV4 is every block of the IANA IPv4 Special-Purpose Address
// Registry whose "Globally Reachable" is False or N/A (checked against the
// registry of 2025-10-09), plus multicast from the IPv4 Address Space
// registry. The two globally reachable entries inside 192.0.0.0/24
// (192.0.0.9/32 PCP and 192.0.0.10/32 TURN anycast) are anycast services,
// never a timer's target, so the whole /24 is refused rather than carved
// up; the registry's other globally reachable blocks (192.31.196.0/24
// AS112-v4, 192.52.193.0/24 AMT, 192.175.48.0/24 AS112 direct delegation)
// are dialled like any global address.
var notGlobalV4 = prefixes(
	"0.0.0.0/8",          // "this network"
	"10.0.0.0/8",         // private use
	"100.64.0.0/10",      // shared address space (carrier-grade NAT)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link local
	"172.16.0.0/12",      // private use
	"192.0.0.0/24",       // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
	"192.0.2.0/24",       // documentation (TEST-NET-1)
	"192.88.99.0/24",     // deprecated 6to4 relay anycast
	"192.168.0.0/16",     // private use
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // documentation (TEST-NET-2)
	"203.0.113.0/24",     // documentation (TEST-NET-3)
	"224.0.0.0/4",        // multicast: not unicast at all
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast
)

// globalV6 is where globally routable IPv6 unicast lies: the global
// unicast space (IANA's IPv6 Address Space registry), and the well-known
// NAT64 prefix, which the special-purpose registry marks globally
// reachable (the IPv4 address it embeds is checked too).
var globalV6 = prefixes("2000::/3", "64:ff9b::/96")

// notGlobalV6 is every block of the IANA IPv6 Special-Purpose Address
// Registry inside globalV6 whose "Globally Reachable" is False or N/A
// (checked against the registry of 2025-10-09); the blocks outside it
// (::/128, ::1/128, ::ffff:0:0/96, 64:ff9b:1::/48, 100::/64,
// 100:0:0:1::/64, 5f00::/16, fc00::/7, fe80::/10) are refused by not
// being in globalV6. 2001::/23's globally reachable more-specifics
// (2001:1::1/128, 2001:1::2/128 and 2001:1::3/128 anycast, 2001:3::/32
// AMT, 2001:4:112::/48 AS112-v6, 2001:20::/28 ORCHIDv2 and 2001:30::/28
// drone entity tags) are anycast services and overlay identifiers, never
// a timer's target, so all of it is refused, Teredo (2001::/32, N/A) and
// benchmarking (2001:2::/48) with it. 2620:4f:8000::/48 (AS112, globally
// reachable) is dialled like any global address.
var notGlobalV6 = prefixes(
	"2001::/23",     // IETF protocol assignments, all of it: see above
	"2001:db8::/32", // documentation
	"3fff::/20",     // documentation
	"2002::/16",     // 6to4: allowed only through the IPv4 address it embeds, below
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries and
// routes to, in every form a NAT or tunnel would unwrap: IPv4-mapped and
// IPv4-compatible (::/96), NAT64 (64:ff9b::/96, and 64:ff9b:1::/48 at each
// RFC 6052 prefix length an operator may choose), 6to4 (2002::/16) and
// Teredo (2001::/32: the server, and the client, whose address is the
// inverted last 32 bits).
func embeddedIPv4(ip netip.Addr) []netip.Addr {
	if !ip.Is6() {
		return nil
	}
	b := ip.As16()
	v4 := func(i ...int) netip.Addr { return netip.AddrFrom4([4]byte{b[i[0]], b[i[1]], b[i[2]], b[i[3]]}) }
	in := func(block string) bool { return netip.MustParsePrefix(block).Contains(ip) }
	switch {
	case ip.Is4In6():
		return []netip.Addr{ip.Unmap()}
	case in("::/96"):
		if ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
			return nil
		}
		return []netip.Addr{v4(12, 13, 14, 15)}
	case in("64:ff9b::/96"):
		return []netip.Addr{v4(12, 13, 14, 15)}
	case in("64:ff9b:1::/48"):
		// RFC 6052 section 2.2: bits 64-71 are skipped at /48 and /56.
		return []netip.Addr{v4(6, 7, 9, 10), v4(7, 9, 10, 11), v4(9, 10, 11, 12), v4(12, 13, 14, 15)}
	case in("2002::/16"):
		return []netip.Addr{v4(2, 3, 4, 5)}
	case in("2001::/32"):
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return []netip.Addr{client, v4(4, 5, 6, 7)}
	}
	return nil
}

// neverDialled reports addresses refused even with ALLOW_PRIVATE_TARGETS:
// link-local, whose 169.254.169.254 is the metadata service, and the
// metadata service's IPv6 address.
func neverDialled(ip netip.Addr) bool {
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == metadataV6
}

// globalUnicast reports whether ip is globally routable unicast: in no
// non-global block of the IANA special-purpose registries.
func globalUnicast(ip netip.Addr) bool {
	blocks := notGlobalV4
	if ip.Is6() {
		if !slices.ContainsFunc(globalV6, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			return false
		}
		blocks = notGlobalV6
		if netip.MustParsePrefix("2002::/16").Contains(ip) {
			blocks = nil // 6to4 routes to the IPv4 address it embeds, checked by the caller
		}
	}
	return !slices.ContainsFunc(blocks, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// safeAddress refuses to dial link-local and cloud metadata addresses, and,
// unless allowPrivate, every address that is not globally routable
// unicast. It runs on the address actually dialled, after DNS, so a name
// cannot route around it, and it checks each IPv4 address an IPv6 one
// embeds as well, since a NAT64 gateway, a 6to4 or Teredo relay, or the
// kernel itself (mapped and compatible forms) would deliver to it.
func safeAddress(address string, allowPrivate bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refused to dial %s: not an IP address", host)
	}
	ip = ip.WithZone("") // a zone must not disguise an address
	if ip.Is4In6() {
		ip = ip.Unmap() // the kernel dials the IPv4 address itself
	}
	// Each error names the address that decided it: the one dialled, and
	// the embedded IPv4 address when that one was the reason.
	name := func(a netip.Addr) string {
		if a == ip {
			return ip.String()
		}
		return fmt.Sprintf("%s (embedding %s)", ip, a)
	}
	all := append([]netip.Addr{ip}, embeddedIPv4(ip)...)
	for _, a := range all {
		if neverDialled(a) {
			return fmt.Errorf("refused to dial %s: link-local and metadata addresses are never targets", name(a))
		}
	}
	if allowPrivate {
		return nil
	}
	for _, a := range all {
		if !globalUnicast(a) {
			return fmt.Errorf("refused to dial %s: only globally routable addresses are targets without ALLOW_PRIVATE_TARGETS", name(a))
		}
	}
	return nil
}
