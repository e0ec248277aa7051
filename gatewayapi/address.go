package gatewayapi

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// assignAddresses chooses the address each Gateway's listeners bind:
// the IPAddress of spec.addresses when one is given, else one from
// Options.AddressPool, else Options.Address. Requested addresses of other
// types, or values that are not IP addresses, make the Gateway not Accepted
// (UnsupportedAddress), as does a routability other than the default; an
// IP outside a configured pool, or more than one
// IP, makes it not Programmed (AddressNotUsable).
func (t *translator) assignAddresses() {
	pool := t.opts.AddressPool
	usePool := pool.IsValid()
	if usePool {
		pool = pool.Masked()
	}
	taken := make(map[netip.Addr]bool)
	var auto []*gatewayState
	for _, g := range t.gatewayList {
		var static []netip.Addr
		wantAuto := len(g.gw.Spec.Addresses) == 0
		for i, a := range g.gw.Spec.Addresses {
			typ := cmp.Or(deref(a.Type), gatewayv1.IPAddressType)
			if typ != gatewayv1.IPAddressType {
				g.addrReason = gatewayv1.GatewayReasonUnsupportedAddress
				g.addrMsg = fmt.Sprintf("spec.addresses[%d]: type %q is not supported (only IPAddress is)", i, typ)
				break
			}
			if a.Routability != gatewayv1.GatewayAddressRoutabilityDefault {
				// GatewayAddressRoutability (experimental): rauta binds
				// the addresses of the hosts it runs on and cannot make
				// one reachable from a narrower or wider scope.
				g.addrReason = gatewayv1.GatewayReasonUnsupportedAddress
				g.addrMsg = fmt.Sprintf("spec.addresses[%d].routability: %q is not supported (only the default, empty, is)", i, a.Routability)
				break
			}
			if a.Value == "" {
				wantAuto = true
				continue
			}
			ip, err := netip.ParseAddr(a.Value)
			if err != nil {
				g.addrReason = gatewayv1.GatewayReasonUnsupportedAddress
				g.addrMsg = fmt.Sprintf("spec.addresses[%d]: %q is not an IP address", i, a.Value)
				break
			}
			ip = ip.Unmap()
			if usePool && !pool.Contains(ip) {
				if g.progReason == "" {
					g.progReason = gatewayv1.GatewayReasonAddressNotUsable
					g.progMsg = fmt.Sprintf("spec.addresses[%d]: %s is outside the address pool %s", i, ip, pool)
				}
				continue
			}
			static = append(static, ip)
		}
		if g.addrReason != "" {
			continue
		}
		if len(static) > 1 && g.progReason == "" {
			g.progReason = gatewayv1.GatewayReasonAddressNotUsable
			g.progMsg = fmt.Sprintf("spec.addresses: %d IP addresses requested; a Gateway binds one", len(static))
		}
		if len(static) > 0 {
			g.address = static[0].String()
			taken[static[0]] = true
			continue
		}
		if wantAuto {
			auto = append(auto, g)
		}
	}
	for _, g := range auto {
		if !usePool {
			g.address = cmp.Or(t.opts.Address, "0.0.0.0")
			continue
		}
		ip, ok := pickFromPool(pool, g.key.String(), taken)
		if !ok {
			if g.progReason == "" {
				g.progReason = gatewayv1.GatewayReasonAddressNotAssigned
				g.progMsg = fmt.Sprintf("the address pool %s is exhausted", pool)
			}
			continue
		}
		taken[ip] = true
		g.address = ip.String()
	}
	for _, g := range t.gatewayList {
		if g.address == "" || !g.servable() {
			continue
		}
		typ := gatewayv1.IPAddressType
		if _, err := netip.ParseAddr(g.address); err != nil {
			typ = gatewayv1.HostnameAddressType
		}
		g.statusAddress = []gatewayv1.GatewayStatusAddress{{Type: new(typ), Value: g.address}}
	}
}

// pickFromPool derives an address of pool from key and probes forward from
// it to the first address not taken. The network address (and, for IPv4,
// the broadcast address) of prefixes with more than two addresses are not
// used. Only the low 64 host bits of an IPv6 pool are used.
func pickFromPool(pool netip.Prefix, key string, taken map[netip.Addr]bool) (netip.Addr, bool) {
	hostBits := pool.Addr().BitLen() - pool.Bits()
	if hostBits > 63 {
		hostBits = 63
	}
	size := uint64(1) << hostBits
	first, last := uint64(0), size-1
	if size > 2 {
		first = 1
		if pool.Addr().Is4() {
			last = size - 2
		}
	}
	n := last - first + 1
	h := fnv.New64a()
	h.Write([]byte(key))
	start := h.Sum64() % n
	base := pool.Addr()
	for i := uint64(0); i < n && i < uint64(len(taken))+1; i++ {
		ip := addOffset(base, first+(start+i)%n)
		if !taken[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// addOffset returns base plus off.
func addOffset(base netip.Addr, off uint64) netip.Addr {
	b := base.As16()
	lo := binary.BigEndian.Uint64(b[8:]) + off
	binary.BigEndian.PutUint64(b[8:], lo)
	ip := netip.AddrFrom16(b)
	if base.Is4() {
		return ip.Unmap()
	}
	return ip
}

// addressesOverlap reports whether sockets bound to a and b on one port
// would collide: the same address, or a wildcard and an address of its
// family.
func addressesOverlap(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if x.Is4() != y.Is4() {
		return x.IsUnspecified() && x.Is6() || y.IsUnspecified() && y.Is6()
	}
	return x.IsUnspecified() || y.IsUnspecified()
}
