// Package netguard keeps webhook deliveries from reaching addresses they should not: the
// machine itself, private networks, link-local and cloud metadata services, multicast and
// reserved ranges (server-side request forgery). The check runs at dial time on the resolved
// address, after DNS, and the connection is made to exactly the address that was checked, so a
// name that resolves to a public address once and to a private one later (DNS rebinding)
// cannot slip past it.
//
// Operators who do want to deliver to such addresses (a receiver on the same host, a service
// in the private network) list CIDR prefixes in an allow-list (the --allow-target flag); an
// address inside an allowed prefix is dialed whatever its class.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is wrapped by every error about a refused address; test it with errors.Is.
var ErrBlocked = errors.New("address refused by the SSRF guard")

// DialTimeoutDefault bounds one TCP connect when the caller's context has no earlier deadline.
const DialTimeoutDefault = 10 * time.Second

// BlockedError says which address was refused, which range it falls in, and how to allow it.
type BlockedError struct {
	// Host is the name that was dialed when it differs from Addr ("" for an IP literal).
	Host string
	Addr netip.Addr
	// Range is the refused range the address belongs to and Reason its name ("loopback"...).
	Range  netip.Prefix
	Reason string
}

func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("refusing to connect to an invalid address: %v", ErrBlocked)
	}
	target := e.Addr.String()
	if e.Host != "" && e.Host != target {
		target = fmt.Sprintf("%s (%s)", e.Host, e.Addr)
	}
	single := netip.PrefixFrom(e.Addr.WithZone(""), e.Addr.BitLen())
	return fmt.Sprintf("refusing to connect to %s, in the %s range %s: %v; to deliver there, add %s (or the whole range %s) to the allow-list (--allow-target)",
		target, e.Reason, e.Range, ErrBlocked, single, e.Range)
}

// Unwrap makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Guard checks addresses against the refused ranges and an allow-list, and dials only checked
// addresses. It is safe for concurrent use.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver
	dialer   *net.Dialer
}

// New returns a guard that refuses the special ranges except inside the allow prefixes.
// A nil or empty allow-list permits public addresses only.
func New(allow []netip.Prefix) *Guard {
	g := &Guard{
		allow:    append([]netip.Prefix(nil), allow...),
		resolver: net.DefaultResolver,
	}
	g.dialer = &net.Dialer{
		Timeout:   DialTimeoutDefault,
		KeepAlive: 30 * time.Second,
		// The last line of defence: whatever address the socket is about to connect to is
		// checked again, so no code path can dial an address that was not checked.
		Control: g.control,
	}
	return g
}

// Allowed reports whether addr is in one of the guard's allow-list prefixes. An IPv4-mapped
// IPv6 address matches IPv4 prefixes too.
func (g *Guard) Allowed(addr netip.Addr) bool {
	addr = addr.WithZone("")
	for _, p := range g.allow {
		if p.Contains(addr) || (addr.Is4In6() && p.Contains(addr.Unmap())) {
			return true
		}
	}
	return false
}

// Check returns nil when a connection to addr is permitted: the address is public, or an
// allow-list prefix contains it. Otherwise it returns a *BlockedError wrapping ErrBlocked.
func (g *Guard) Check(addr netip.Addr) error {
	v := Classify(addr)
	if !v.Blocked || g.Allowed(addr) {
		return nil
	}
	return &BlockedError{Addr: addr, Range: v.Range, Reason: v.Reason}
}

// DialContext resolves address ("host:port"), checks every address the name resolves to, and
// connects to the permitted ones in the resolver's order, never to a refused one. It fails with
// a *BlockedError when none is permitted. Its signature fits http.Transport.DialContext.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var ipNetwork string
	switch network {
	case "tcp":
		ipNetwork = "ip"
	case "tcp4":
		ipNetwork = "ip4"
	case "tcp6":
		ipNetwork = "ip6"
	default:
		return nil, fmt.Errorf("netguard: network %q is not supported: only tcp, tcp4 and tcp6 are", network)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("netguard: address %q is not host:port: %w", address, err)
	}
	permitted, err := g.permitted(ctx, ipNetwork, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ip := range permitted {
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// permitted resolves host (unless it is an IP literal), checks every address and returns the
// permitted ones in the resolver's order. With none permitted it returns the first refusal.
func (g *Guard) permitted(ctx context.Context, ipNetwork, host string) ([]netip.Addr, error) {
	var candidates []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		candidates = []netip.Addr{ip}
	} else {
		candidates, err = g.resolver.LookupNetIP(ctx, ipNetwork, host)
		if err != nil {
			return nil, fmt.Errorf("netguard: resolving %q: %w", host, err)
		}
	}
	var permitted []netip.Addr
	var firstBlocked *BlockedError
	for _, ip := range candidates {
		err := g.Check(ip)
		if err == nil {
			permitted = append(permitted, ip)
			continue
		}
		var be *BlockedError
		if firstBlocked == nil && errors.As(err, &be) {
			be.Host = host
			firstBlocked = be
		}
	}
	switch {
	case len(permitted) > 0:
		return permitted, nil
	case firstBlocked != nil:
		return nil, firstBlocked
	default:
		return nil, fmt.Errorf("netguard: %q resolves to no address", host)
	}
}

// control runs just before the socket connects, with the literal address it connects to.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: cannot check address %q before connecting: %w", address, ErrBlocked)
	}
	return g.Check(ap.Addr())
}

// ParsePrefixes parses allow-list entries: CIDR prefixes ("10.0.0.0/8", "fd00::/8") or single
// addresses ("127.0.0.1", which means 127.0.0.1/32). Surrounding spaces are ignored. The error
// names the first bad entry and its position.
func ParsePrefixes(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for i, raw := range entries {
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, fmt.Errorf("allow-list entry %d is empty: give a CIDR prefix such as 127.0.0.1/32 or 10.0.0.0/8", i+1)
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("allow-list entry %d (%q) is not a valid CIDR prefix: %w; use the form 10.0.0.0/8 or fd00::/8", i+1, raw, err)
			}
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("allow-list entry %d (%q) has an IPv6 zone: remove the %%zone part", i+1, raw)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %d (%q) is neither a CIDR prefix nor an IP address: %w; use the form 127.0.0.1/32 or 10.0.0.0/8", i+1, raw, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("allow-list entry %d (%q) has an IPv6 zone: remove the %%zone part", i+1, raw)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
