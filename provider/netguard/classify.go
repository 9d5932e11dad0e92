package netguard

import "net/netip"

// Verdict is what Classify says about one address.
type Verdict struct {
	// Blocked is true when the address is in a refused range.
	Blocked bool
	// Reason names the range ("loopback", "private", "cloud metadata"...); "" when not blocked.
	Reason string
	// Range is the refused range that matched, the most specific one.
	Range netip.Prefix
}

type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// Most specific ranges first: the first match names the address.
var refusedV4 = []refusedRange{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("100.100.100.200/32"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network (reserved)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (shared)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment (reserved)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (reserved)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (reserved)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (reserved)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (reserved)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

var refusedV6 = []refusedRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated, private)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (private)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (reserved)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (reserved)"},
	// IPv4-compatible addresses (deprecated); ::/128 and ::1/128 are matched above.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
}

// IPv6 ranges that carry an IPv4 address: the embedded address is classified as IPv4.
var (
	mappedV4  = netip.MustParsePrefix("::ffff:0:0/96") // IPv4-mapped
	nat64     = netip.MustParsePrefix("64:ff9b::/96")  // well-known NAT64 prefix
	sixToFour = netip.MustParsePrefix("2002::/16")     // 6to4: IPv4 in bits 16..47
)

// Classify says whether addr is in a range the guard refuses. It is pure: it sends nothing.
// IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are
// judged by the embedded address. The invalid zero address is blocked.
func Classify(addr netip.Addr) Verdict {
	if !addr.IsValid() {
		return Verdict{Blocked: true, Reason: "invalid"}
	}
	addr = addr.WithZone("")
	if addr.Is4() {
		return match(addr, refusedV4)
	}
	if addr.Is4In6() {
		v := Classify(addr.Unmap())
		if v.Blocked {
			v.Reason = "IPv4-mapped " + v.Reason
			v.Range = mappedRange(v.Range)
		}
		return v
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		if v := Classify(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); v.Blocked {
			return Verdict{Blocked: true, Reason: "NAT64-embedded " + v.Reason, Range: nat64}
		}
		return Verdict{}
	case sixToFour.Contains(addr):
		if v := Classify(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); v.Blocked {
			return Verdict{Blocked: true, Reason: "6to4-embedded " + v.Reason, Range: sixToFour}
		}
		return Verdict{}
	}
	return match(addr, refusedV6)
}

// mappedRange returns the IPv4-mapped IPv6 form of an IPv4 prefix (10.0.0.0/8 ->
// ::ffff:10.0.0.0/104), so the reported range contains the reported address.
func mappedRange(p netip.Prefix) netip.Prefix {
	if !p.IsValid() || !p.Addr().Is4() {
		return p
	}
	return netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
}

func match(addr netip.Addr, ranges []refusedRange) Verdict {
	for _, r := range ranges {
		if r.prefix.Contains(addr) {
			return Verdict{Blocked: true, Reason: r.reason, Range: r.prefix}
		}
	}
	return Verdict{}
}
