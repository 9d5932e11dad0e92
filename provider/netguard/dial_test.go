package netguard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
)

// Every connection in these tests goes to 127.0.0.1 only: the refused-address paths are
// exercised with a loopback receiver and no allow-list, never by dialing another range.

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

type testBundle struct {
	ln   net.Listener
	port string
	// accepted receives every connection the receiver accepts.
	accepted chan net.Conn
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	b := &testBundle{ln: ln, accepted: make(chan net.Conn, 16)}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-b.accepted:
				c.Close()
			default:
				return
			}
		}
	})
	return b
}

// expectAccepted waits for n connections, then checks no other one arrives.
func (b *testBundle) expectAccepted(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		c := waitfor.Receive(t, fmt.Sprintf("connection %d of %d at the receiver", i+1, n), b.accepted)
		c.Close()
	}
	select {
	case c := <-b.accepted:
		c.Close()
		t.Fatalf("receiver accepted more than %d connections", n)
	case <-time.After(100 * time.Millisecond):
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
	t.Cleanup(cancel)
	return ctx
}

func TestDialLoopbackRefusedWithoutAllowList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn, err := New(nil).DialContext(ctxTimeout(t), "tcp", "127.0.0.1:"+b.port)
	if err == nil {
		conn.Close()
		t.Fatal("dial to 127.0.0.1 without an allow-list succeeded")
	}
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("dial error %v is not ErrBlocked", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1/32") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("error %q does not say what was refused and how to allow it", err)
	}
	// Had the refused dial connected, its connection would be queued before this one.
	allowed, err := New(loopback).DialContext(ctxTimeout(t), "tcp", "127.0.0.1:"+b.port)
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	defer allowed.Close()
	b.expectAccepted(t, 1)
}

func TestDialLoopbackAllowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, network := range []string{"tcp", "tcp4"} {
		conn, err := New(loopback).DialContext(ctxTimeout(t), network, "127.0.0.1:"+b.port)
		if err != nil {
			t.Fatalf("dial %s with 127.0.0.1/32 allowed: %v", network, err)
		}
		if got := conn.RemoteAddr().String(); got != "127.0.0.1:"+b.port {
			t.Errorf("connected to %s, want 127.0.0.1:%s", got, b.port)
		}
		conn.Close()
	}
	b.expectAccepted(t, 2)
}

func TestDialAllowListOnlyCoversListedAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A guard that allows 127.0.0.2 only still refuses the receiver's 127.0.0.1.
	g := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")})
	_, err := g.DialContext(ctxTimeout(t), "tcp", "127.0.0.1:"+b.port)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("dial 127.0.0.1 with only 127.0.0.2/32 allowed = %v, want ErrBlocked", err)
	}
	b.expectAccepted(t, 0)
}

func TestDialerControlRefusesUncheckedAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Go straight to the guard's dialer, skipping the resolve-and-check step: the socket's
	// Control hook still refuses the address before any packet leaves.
	_, err := New(nil).dialer.DialContext(ctxTimeout(t), "tcp", "127.0.0.1:"+b.port)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("raw dial through the guard's dialer = %v, want ErrBlocked", err)
	}
	conn, err := New(loopback).dialer.DialContext(ctxTimeout(t), "tcp", "127.0.0.1:"+b.port)
	if err != nil {
		t.Fatalf("raw dial with 127.0.0.1/32 allowed: %v", err)
	}
	conn.Close()
	b.expectAccepted(t, 1)
}

func TestControlParsesAddress(t *testing.T) {
	t.Parallel()
	g := New(loopback)
	if err := g.control("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("control(127.0.0.1:80) = %v, want allowed", err)
	}
	if err := g.control("tcp6", "[::1]:80", nil); !errors.Is(err, ErrBlocked) {
		t.Errorf("control([::1]:80) = %v, want ErrBlocked", err)
	}
	if err := g.control("tcp", "not-an-address", nil); !errors.Is(err, ErrBlocked) {
		t.Errorf("control(not-an-address) = %v, want ErrBlocked", err)
	}
}

func TestDialBadInput(t *testing.T) {
	t.Parallel()
	g := New(loopback)
	cases := []struct {
		network, address, want string
	}{
		{"udp", "127.0.0.1:53", `network "udp" is not supported`},
		{"tcp", "127.0.0.1", "not host:port"},
		{"tcp", "", "not host:port"},
	}
	for _, c := range cases {
		_, err := g.DialContext(ctxTimeout(t), c.network, c.address)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DialContext(%q, %q) = %v, want an error containing %q", c.network, c.address, err, c.want)
		}
	}
}

func TestDialConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = New(loopback).DialContext(ctxTimeout(t), "tcp", addr)
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if errors.Is(err, ErrBlocked) {
		t.Fatalf("a refused connection is reported as blocked: %v", err)
	}
}

// dnsServer is a tiny authoritative DNS server on 127.0.0.1 answering A and AAAA queries
// from a fixed table, so the guard's name-resolution path runs against a real resolver.
type dnsServer struct {
	conn    net.PacketConn
	records map[string][]netip.Addr // lower-case name with the trailing dot
	mu      sync.Mutex
	queries int
}

func newDNSServer(t *testing.T, records map[string][]netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp on 127.0.0.1: %v", err)
	}
	s := &dnsServer{conn: pc, records: records}
	t.Cleanup(func() { pc.Close() })
	go s.serve()
	return s
}

// resolver returns a resolver that sends every query to this server.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
		},
	}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.conn.WriteTo(resp, from)
		}
	}
}

func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	// Read the question name.
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qEnd := i + 5 // zero byte, type, class
	qtype := binary.BigEndian.Uint16(q[i+1:])
	name := strings.ToLower(strings.Join(labels, ".")) + "."

	s.mu.Lock()
	s.queries++
	s.mu.Unlock()
	addrs, known := s.records[name]
	var answers [][]byte
	for _, a := range addrs {
		var rdata []byte
		switch {
		case qtype == 1 && a.Is4():
			b := a.As4()
			rdata = b[:]
		case qtype == 28 && a.Is6():
			b := a.As16()
			rdata = b[:]
		default:
			continue
		}
		rr := []byte{0xc0, 12} // pointer to the question name
		rr = binary.BigEndian.AppendUint16(rr, qtype)
		rr = binary.BigEndian.AppendUint16(rr, 1) // IN
		rr = binary.BigEndian.AppendUint32(rr, 1) // TTL
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(rdata)))
		answers = append(answers, append(rr, rdata...))
	}
	flags := uint16(0x8400) // response, authoritative
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte{}, q[0:2]...)
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = append(resp, q[12:qEnd]...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}

func guardWithDNS(allow []netip.Prefix, s *dnsServer) *Guard {
	g := New(allow)
	g.resolver = s.resolver()
	return g
}

func TestDialNameResolvingToLoopback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dns := newDNSServer(t, map[string][]netip.Addr{
		"hooks.example.test.": {netip.MustParseAddr("127.0.0.1")},
	})

	// A harmless-looking name that resolves to a refused address is refused.
	_, err := guardWithDNS(nil, dns).DialContext(ctxTimeout(t), "tcp", "hooks.example.test:"+b.port)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("dial hooks.example.test (-> 127.0.0.1) without an allow-list = %v, want ErrBlocked", err)
	}
	if !strings.Contains(err.Error(), "hooks.example.test (127.0.0.1)") {
		t.Errorf("error %q does not name the host and the address it resolved to", err)
	}

	conn, err := guardWithDNS(loopback, dns).DialContext(ctxTimeout(t), "tcp", "hooks.example.test:"+b.port)
	if err != nil {
		t.Fatalf("dial hooks.example.test with 127.0.0.1/32 allowed: %v", err)
	}
	conn.Close()
	b.expectAccepted(t, 1)
	dns.mu.Lock()
	defer dns.mu.Unlock()
	if dns.queries == 0 {
		t.Error("the DNS server saw no query: the name was not resolved through it")
	}
}

func TestPermittedSkipsRefusedCandidates(t *testing.T) {
	t.Parallel()
	// Only resolution happens here (against the DNS server on 127.0.0.1); nothing is dialed.
	dns := newDNSServer(t, map[string][]netip.Addr{
		"mixed.example.test.": {
			netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("169.254.169.254"),
			netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("fd00:ec2::254"),
		},
		"private.example.test.": {netip.MustParseAddr("192.168.7.7"), netip.MustParseAddr("fd00::7")},
	})
	got, err := guardWithDNS(loopback, dns).permitted(ctxTimeout(t), "ip", "mixed.example.test")
	if err != nil {
		t.Fatalf("permitted(mixed.example.test): %v", err)
	}
	if len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("permitted(mixed.example.test) = %v, want only the allowed 127.0.0.1", got)
	}

	got, err = guardWithDNS(loopback, dns).permitted(ctxTimeout(t), "ip4", "mixed.example.test")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("permitted(ip4, mixed.example.test) = %v, %v; want [127.0.0.1]", got, err)
	}

	_, err = guardWithDNS(loopback, dns).permitted(ctxTimeout(t), "ip", "private.example.test")
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("permitted(private.example.test) = %v, want a *BlockedError", err)
	}
	if be.Host != "private.example.test" || !strings.Contains(err.Error(), "private.example.test (") {
		t.Errorf("error %q does not name the host", err)
	}

	_, err = guardWithDNS(nil, dns).permitted(ctxTimeout(t), "ip6", "mixed.example.test")
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("permitted(ip6, mixed.example.test) without an allow-list = %v, want ErrBlocked", err)
	}
}

func TestDialUnknownName(t *testing.T) {
	t.Parallel()
	dns := newDNSServer(t, map[string][]netip.Addr{"empty.example.test.": nil})
	for _, name := range []string{"missing.example.test", "empty.example.test"} {
		_, err := guardWithDNS(loopback, dns).DialContext(ctxTimeout(t), "tcp", name+":80")
		if err == nil || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Fatalf("dial of %s = %v, want an error naming it", name, err)
		}
		if errors.Is(err, ErrBlocked) {
			t.Errorf("a resolution failure is reported as blocked: %v", err)
		}
	}
}
