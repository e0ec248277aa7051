package nodeagent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// The conformance suite's base manifests run CoreDNS (for UDPRoute tests)
// with a Corefile that forwards "." to public resolvers and answers the
// zone foo.bar.com with the whoami plugin. No image can be pulled here, so
// DNSServer stands in for it: it reads the same Corefile and answers the
// whoami zones as CoreDNS's whoami plugin does (the client's address and
// port in the additional section). Forwarding needs the internet, which
// these machines do not have; forwarded zones answer SERVFAIL, which is what
// CoreDNS answers when no upstream responds. Zones with neither plugin
// answer REFUSED.

// ZonePlugin is what a server block of a Corefile does with its queries.
type ZonePlugin uint8

const (
	// ZoneRefused answers REFUSED (a block with no supported plugin).
	ZoneRefused ZonePlugin = iota
	// ZoneWhoami answers with the client's address, like CoreDNS whoami.
	ZoneWhoami
	// ZoneForward answers SERVFAIL: the upstreams are unreachable offline.
	ZoneForward
)

// Zone is one zone of a Corefile server block.
type Zone struct {
	// Name is the zone, fully qualified ("." for the root).
	Name string
	// Port is the port the block serves.
	Port int
	// Plugin is what the block does with queries.
	Plugin ZonePlugin
}

// ParseCorefile reads the server blocks of a Corefile: their zones and
// ports, and whether they use the whoami or forward plugin (whoami wins
// when both appear). Other directives are accepted and ignored.
func ParseCorefile(r io.Reader) ([]Zone, error) {
	var zones []Zone
	var open []Zone // zones of the block being read
	depth := 0
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		opens := fields[len(fields)-1] == "{"
		if opens {
			fields = fields[:len(fields)-1]
		}
		switch {
		case depth == 0 && opens:
			if len(fields) == 0 {
				return nil, fmt.Errorf("corefile line %d: a server block needs a zone", line)
			}
			open = open[:0]
			for _, f := range fields {
				z, err := parseZoneKey(f)
				if err != nil {
					return nil, fmt.Errorf("corefile line %d: %w", line, err)
				}
				open = append(open, z)
			}
			depth = 1
		case depth == 0:
			return nil, fmt.Errorf("corefile line %d: expected a server block", line)
		case len(fields) == 1 && fields[0] == "}":
			depth--
			if depth == 0 {
				zones = append(zones, open...)
			}
		default:
			if opens {
				depth++ // a plugin block, e.g. "forward . x {"
			}
			if depth == 1 && len(fields) > 0 {
				for i := range open {
					switch fields[0] {
					case "whoami":
						open[i].Plugin = ZoneWhoami
					case "forward":
						if open[i].Plugin != ZoneWhoami {
							open[i].Plugin = ZoneForward
						}
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if depth != 0 {
		return nil, errors.New("corefile: unclosed block")
	}
	return zones, nil
}

// parseZoneKey parses "zone[:port]" with an optional "dns://" scheme.
func parseZoneKey(s string) (Zone, error) {
	s = strings.TrimPrefix(s, "dns://")
	z := Zone{Port: 53}
	if name, port, ok := strings.Cut(s, ":"); ok {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return Zone{}, fmt.Errorf("zone %q: bad port", s)
		}
		s, z.Port = name, p
	}
	if s == "" {
		s = "."
	}
	z.Name = dns.Fqdn(strings.ToLower(s))
	return z, nil
}

// DNSServer answers queries for the zones of a Corefile.
type DNSServer struct {
	// Zones are the zones served; queries are matched to the longest zone
	// on the port they arrive on.
	Zones []Zone
	// Logger receives a line per query, like CoreDNS's log plugin.
	Logger *slog.Logger
}

// answer builds the reply to a query that arrived on port from client.
func (s *DNSServer) answer(req *dns.Msg, port int, client net.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	zone, ok := s.match(q.Name, port)
	switch {
	case !ok || zone.Plugin == ZoneRefused:
		m.Rcode = dns.RcodeRefused
	case zone.Plugin == ZoneForward:
		m.Rcode = dns.RcodeServerFailure
	default:
		ip, cport, proto := addrParts(client)
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET}
		var rr dns.RR
		if ip.To4() != nil {
			hdr.Rrtype = dns.TypeA
			rr = &dns.A{Hdr: hdr, A: ip.To4()}
		} else {
			hdr.Rrtype = dns.TypeAAAA
			rr = &dns.AAAA{Hdr: hdr, AAAA: ip}
		}
		srv := &dns.SRV{
			Hdr:    dns.RR_Header{Name: "_" + proto + "." + q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
			Port:   uint16(cport),
			Target: ".",
		}
		m.Extra = []dns.RR{rr, srv}
	}
	if s.Logger != nil {
		s.Logger.Info("dns query", "client", client.String(), "name", q.Name, "type", dns.TypeToString[q.Qtype], "rcode", dns.RcodeToString[m.Rcode])
	}
	return m
}

func addrParts(a net.Addr) (net.IP, int, string) {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.IP, v.Port, "udp"
	case *net.TCPAddr:
		return v.IP, v.Port, "tcp"
	}
	return net.IPv4zero, 0, "udp"
}

// match finds the longest zone containing name on port.
func (s *DNSServer) match(name string, port int) (Zone, bool) {
	name = strings.ToLower(dns.Fqdn(name))
	best, found := Zone{}, false
	for _, z := range s.Zones {
		if z.Port != port || !dns.IsSubDomain(z.Name, name) {
			continue
		}
		if !found || dns.CountLabel(z.Name) > dns.CountLabel(best.Name) {
			best, found = z, true
		}
	}
	return best, found
}

// Serve answers on UDP and TCP for every port of the zones, on host
// (empty for all addresses), until ctx ends.
func (s *DNSServer) Serve(ctx context.Context, host string) error {
	ports := map[int]bool{}
	for _, z := range s.Zones {
		ports[z.Port] = true
	}
	if len(ports) == 0 {
		return errors.New("dns: no zones to serve")
	}
	var servers []*dns.Server
	errc := make(chan error, 2*len(ports))
	for port := range ports {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			_ = w.WriteMsg(s.answer(r, port, w.RemoteAddr()))
		})
		for _, network := range []string{"udp", "tcp"} {
			srv := &dns.Server{Addr: addr, Net: network, Handler: h}
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			servers = append(servers, srv)
			go func() { errc <- srv.ListenAndServe() }()
			select {
			case <-started:
			case err := <-errc:
				for _, o := range servers {
					_ = o.Shutdown()
				}
				return fmt.Errorf("dns: listen %s/%s: %w", addr, network, err)
			}
		}
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		for _, o := range servers {
			_ = o.Shutdown()
		}
		return fmt.Errorf("dns: %w", err)
	}
	for _, o := range servers {
		_ = o.Shutdown()
	}
	return nil
}
