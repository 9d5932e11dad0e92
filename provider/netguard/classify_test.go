package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// These tests only classify addresses: nothing is sent anywhere.

func TestClassifyBlocked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr   string
		reason string // substring of Verdict.Reason
		rng    string
	}{
		{"127.0.0.1", "loopback", "127.0.0.0/8"},
		{"127.255.255.254", "loopback", "127.0.0.0/8"},
		{"::1", "loopback", "::1/128"},
		{"10.0.0.1", "private", "10.0.0.0/8"},
		{"10.255.255.255", "private", "10.0.0.0/8"},
		{"172.16.0.1", "private", "172.16.0.0/12"},
		{"172.31.255.255", "private", "172.16.0.0/12"},
		{"192.168.1.1", "private", "192.168.0.0/16"},
		{"fc00::1", "unique-local", "fc00::/7"},
		{"fd12:3456::1", "unique-local", "fc00::/7"},
		{"169.254.0.1", "link-local", "169.254.0.0/16"},
		{"169.254.169.253", "link-local", "169.254.0.0/16"},
		{"fe80::1", "link-local", "fe80::/10"},
		{"fe80::1%eth0", "link-local", "fe80::/10"},
		{"febf::1", "link-local", "fe80::/10"},
		{"224.0.0.1", "multicast", "224.0.0.0/4"},
		{"239.255.255.250", "multicast", "224.0.0.0/4"},
		{"ff02::1", "multicast", "ff00::/8"},
		{"0.0.0.0", "unspecified", "0.0.0.0/32"},
		{"::", "unspecified", "::/128"},
		{"0.1.2.3", "this-network", "0.0.0.0/8"},
		{"100.64.0.1", "carrier-grade NAT", "100.64.0.0/10"},
		{"100.127.255.255", "carrier-grade NAT", "100.64.0.0/10"},
		{"169.254.169.254", "cloud metadata", "169.254.169.254/32"},
		{"fd00:ec2::254", "cloud metadata", "fd00:ec2::254/128"},
		{"100.100.100.200", "cloud metadata", "100.100.100.200/32"},
		{"255.255.255.255", "broadcast", "255.255.255.255/32"},
		{"240.0.0.1", "reserved", "240.0.0.0/4"},
		{"254.1.2.3", "reserved", "240.0.0.0/4"},
		{"192.0.0.8", "IETF", "192.0.0.0/24"},
		{"192.0.2.10", "documentation", "192.0.2.0/24"},
		{"198.51.100.7", "documentation", "198.51.100.0/24"},
		{"203.0.113.9", "documentation", "203.0.113.0/24"},
		{"198.19.0.1", "benchmarking", "198.18.0.0/15"},
		{"fec0::1", "site-local", "fec0::/10"},
		{"64:ff9b:1::1", "local-use NAT64", "64:ff9b:1::/48"},
		{"100::1", "discard-only", "100::/64"},
		{"2001:db8::1", "documentation", "2001:db8::/32"},
		{"::7f00:1", "IPv4-compatible", "::/96"},
		// IPv4-mapped IPv6 forms of every IPv4 class.
		{"::ffff:127.0.0.1", "IPv4-mapped loopback", "::ffff:127.0.0.0/104"},
		{"::ffff:10.1.2.3", "IPv4-mapped private", "::ffff:10.0.0.0/104"},
		{"::ffff:172.20.0.1", "IPv4-mapped private", "::ffff:172.16.0.0/108"},
		{"::ffff:192.168.0.1", "IPv4-mapped private", "::ffff:192.168.0.0/112"},
		{"::ffff:169.254.1.1", "IPv4-mapped link-local", "::ffff:169.254.0.0/112"},
		{"::ffff:169.254.169.254", "IPv4-mapped cloud metadata", "::ffff:169.254.169.254/128"},
		{"::ffff:100.100.100.200", "IPv4-mapped cloud metadata", "::ffff:100.100.100.200/128"},
		{"::ffff:100.64.1.1", "IPv4-mapped carrier-grade NAT", "::ffff:100.64.0.0/106"},
		{"::ffff:224.0.0.251", "IPv4-mapped multicast", "::ffff:224.0.0.0/100"},
		{"::ffff:0.0.0.0", "IPv4-mapped unspecified", "::ffff:0.0.0.0/128"},
		{"::ffff:255.255.255.255", "IPv4-mapped broadcast", "::ffff:255.255.255.255/128"},
		{"::ffff:240.0.0.1", "IPv4-mapped reserved", "::ffff:240.0.0.0/100"},
		// Other IPv6 forms that carry a refused IPv4 address.
		{"64:ff9b::a00:1", "NAT64-embedded private", "64:ff9b::/96"},
		{"64:ff9b::a9fe:a9fe", "NAT64-embedded cloud metadata", "64:ff9b::/96"},
		{"2002:7f00:1::1", "6to4-embedded loopback", "2002::/16"},
		{"2002:c0a8:101::", "6to4-embedded private", "2002::/16"},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			t.Parallel()
			v := Classify(netip.MustParseAddr(c.addr))
			if !v.Blocked {
				t.Fatalf("Classify(%s) is not blocked; want blocked as %q", c.addr, c.reason)
			}
			if !strings.Contains(v.Reason, c.reason) {
				t.Errorf("Classify(%s).Reason = %q, want it to contain %q", c.addr, v.Reason, c.reason)
			}
			if got := v.Range.String(); got != c.rng {
				t.Errorf("Classify(%s).Range = %s, want %s", c.addr, got, c.rng)
			}
			if !v.Range.Contains(netip.MustParseAddr(c.addr).WithZone("")) {
				t.Errorf("Classify(%s).Range %s does not contain the address", c.addr, v.Range)
			}
		})
	}
}

func TestClassifyPublic(t *testing.T) {
	t.Parallel()
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "11.0.0.1", "9.255.255.255",
		"172.15.255.255", "172.32.0.0", // just outside 172.16.0.0/12
		"192.167.255.255", "192.169.0.0", // around 192.168.0.0/16
		"100.63.255.255", "100.128.0.0", // around 100.64.0.0/10
		"169.253.255.255", "169.255.0.0", // around 169.254.0.0/16
		"223.255.255.255", // just below multicast
		"1.0.0.0",         // just above 0.0.0.0/8
		"2606:4700:4700::1111", "2a00:1450:4001::200e", "fbff:ffff::1", "fe00::1",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	} {
		v := Classify(netip.MustParseAddr(a))
		if v.Blocked {
			t.Errorf("Classify(%s) = blocked (%s, %s); want public", a, v.Reason, v.Range)
		}
		if v.Reason != "" || v.Range.IsValid() {
			t.Errorf("Classify(%s) = %+v; want an empty verdict for a public address", a, v)
		}
	}
}

func TestClassifyInvalid(t *testing.T) {
	t.Parallel()
	if v := Classify(netip.Addr{}); !v.Blocked {
		t.Fatalf("Classify(zero Addr) is not blocked")
	}
	err := New(nil).Check(netip.Addr{})
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("Check(zero Addr) = %v, want ErrBlocked", err)
	}
	if !strings.Contains(err.Error(), "invalid address") {
		t.Errorf("Check(zero Addr) error %q does not say the address is invalid", err)
	}
}

func TestCheckAllowList(t *testing.T) {
	t.Parallel()
	g := New([]netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("fd00::/8"),
	})
	cases := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true}, // the mapped form of an allowed IPv4 address
		{"127.0.0.2", false},
		{"::1", false},
		{"10.1.200.3", true},
		{"10.2.0.1", false},
		{"fd00:ec2::254", true}, // inside fd00::/8: the operator allowed it explicitly
		{"fc00::1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true}, // public: no allow-list needed
	}
	for _, c := range cases {
		err := g.Check(netip.MustParseAddr(c.addr))
		if c.allowed && err != nil {
			t.Errorf("Check(%s) = %v, want allowed", c.addr, err)
		}
		if !c.allowed && !errors.Is(err, ErrBlocked) {
			t.Errorf("Check(%s) = %v, want ErrBlocked", c.addr, err)
		}
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	err := New(nil).Check(netip.MustParseAddr("10.9.8.7"))
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("Check error %v is not a *BlockedError", err)
	}
	msg := err.Error()
	for _, want := range []string{"10.9.8.7", "private", "10.0.0.0/8", "10.9.8.7/32", "allow-list", "--allow-target"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	be.Host = "hooks.example.test"
	if msg := be.Error(); !strings.Contains(msg, "hooks.example.test (10.9.8.7)") {
		t.Errorf("error %q does not name the host and its address", msg)
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := ParsePrefixes([]string{"127.0.0.1/32", " 10.0.0.0/8 ", "192.168.1.7", "::1", "fd00::/8", "10.1.2.3/16"})
	if err != nil {
		t.Fatalf("ParsePrefixes: %v", err)
	}
	want := []string{"127.0.0.1/32", "10.0.0.0/8", "192.168.1.7/32", "::1/128", "fd00::/8", "10.1.0.0/16"}
	if len(got) != len(want) {
		t.Fatalf("ParsePrefixes returned %d prefixes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if got, err := ParsePrefixes(nil); err != nil || len(got) != 0 {
		t.Errorf("ParsePrefixes(nil) = %v, %v; want empty, nil", got, err)
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		entries []string
		want    []string // substrings of the error
	}{
		{[]string{"127.0.0.1/32", "10.0.0.0/33"}, []string{"entry 2", `"10.0.0.0/33"`, "CIDR"}},
		{[]string{"localhost"}, []string{"entry 1", `"localhost"`, "127.0.0.1/32"}},
		{[]string{"10.0.0.0/8", " "}, []string{"entry 2", "empty"}},
		{[]string{"300.1.1.1"}, []string{"entry 1", `"300.1.1.1"`}},
		{[]string{"fe80::1%eth0"}, []string{"entry 1", "zone"}},
		{[]string{"fe80::1%eth0/64"}, []string{"entry 1"}},
		{[]string{"10.0.0.0/x"}, []string{"entry 1", `"10.0.0.0/x"`}},
	}
	for _, c := range cases {
		_, err := ParsePrefixes(c.entries)
		if err == nil {
			t.Errorf("ParsePrefixes(%q) succeeded, want an error", c.entries)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParsePrefixes(%q) error %q does not contain %q", c.entries, err, w)
			}
		}
	}
}
