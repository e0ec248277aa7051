package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/pool"
)

// ErrClosed is returned by the methods of a [Set] after [Set.Close].
var ErrClosed = errors.New("upstream: set closed")

// Options configures a [Set].
type Options struct {
	// Pool, if set, gives every member an HTTP transport
	// ([Member.Transport]) from this pool, shared by the members of all
	// backends with the same address and [Transport]. Nil gives members
	// none, for a program that only forwards streams.
	Pool *pool.Pool
	// Logger receives breaker and health transitions; nil means
	// slog.Default().
	Logger *slog.Logger
	// Hooks are told of state changes, for metrics.
	Hooks Hooks
}

// Hooks are called as members change state. Any may be nil. They are
// called on the goroutine that made the change (a request's, a health
// probe's, or the caller of [Set.Sync]) and must not block.
type Hooks struct {
	// Breaker is called when a member's breaker changes state.
	Breaker func(backend, addr string, from, to breaker.State)
	// Health is called when active health checking of a member starts
	// (changed false) and whenever its health flips (changed true).
	Health func(backend, addr string, healthy, changed bool)
	// Removed is called when a member leaves its backend.
	Removed func(backend, addr string)
}

// Transport is how a backend's members are spoken to over HTTP, given to
// [Set.Sync] with each spec. Members are created afresh (new breakers,
// new transports) when Key changes, and kept otherwise.
type Transport struct {
	// Key identifies Protocol and the TLS settings; equal keys mean
	// equal transports.
	Key string
	// Protocol is the protocol of the members' transports.
	Protocol pool.Protocol
	// TLS builds the client TLS configuration of a TLS backend. It is
	// called only when Key differs from the backend's current key, so
	// that a configuration change that keeps the key parses nothing.
	// Nil means plaintext.
	TLS func() (*tls.Config, error)
}

// Set holds the state of named backends across configurations: each
// backend's members (endpoints with their breakers, health and
// transports) and its load-balancing table. [Set.Sync] brings it in line
// with a list of specs, keeping the state of what stays;
// [Set.UpdateEndpoints] swaps the endpoints of one backend. Readers pick
// members from [Backend.Table] without locking.
//
// The methods that change the set are serialised by the Set; the
// [Backend] values they return are safe for concurrent use.
type Set struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	backends map[string]*Backend
	health   *healthChecker
	closed   bool
}

// NewSet returns an empty Set.
func NewSet(opts Options) *Set {
	s := &Set{opts: opts, log: opts.Logger, backends: make(map[string]*Backend)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.health = newHealthChecker(s)
	return s
}

// Backend is the state of one backend that outlives configurations: its
// members and the current load-balancing table. It is found again by name
// on every [Set.Sync], and replaced by a new one only when its
// [Transport] key changes.
type Backend struct {
	name      string
	transport Transport
	tlsConfig *tls.Config

	lb atomic.Pointer[Table]
	// spec and members are guarded by the Set's mutex.
	spec    *Spec
	members map[string]*Member // by address
}

// Name returns the backend's name.
func (b *Backend) Name() string { return b.name }

// Table returns the backend's current load-balancing table.
func (b *Backend) Table() *Table { return b.lb.Load() }

// TLS returns the client TLS configuration of the backend's transports,
// or nil for plaintext.
func (b *Backend) TLS() *tls.Config { return b.tlsConfig }

// Member is one endpoint of a backend: its breaker, health, stream count
// and transport.
type Member struct {
	addr     string
	key      pool.Key
	rt       *pool.Endpoint
	breaker  *breaker.Breaker // nil when disabled
	count5xx bool
	healthy  atomic.Bool // active health checking; true without checks
	removed  atomic.Bool
	streams  atomic.Int64
	// maxStreams is the backend's Connections.MaxPerEndpoint; zero is
	// no limit.
	maxStreams atomic.Int64
}

// Addr returns the member's address, "ip:port".
func (m *Member) Addr() string { return m.addr }

// Transport returns the member's HTTP transport, or nil when the Set has
// no [Options].Pool.
func (m *Member) Transport() *pool.Endpoint { return m.rt }

// Count5xx reports whether 5xx responses count as breaker failures
// (CircuitBreaker.Count5xx).
func (m *Member) Count5xx() bool { return m.count5xx }

// Healthy reports whether the member passes its active health checks
// (true when it has none).
func (m *Member) Healthy() bool { return m.healthy.Load() }

// Removed reports whether the member has left its backend; a reader
// holding an older table may still see it.
func (m *Member) Removed() bool { return m.removed.Load() }

// Admit reports whether the member may take a request now: it passes its
// health checks and its breaker lets the request through. The ticket must
// be handed back with [Member.Done] or [Member.Cancel].
func (m *Member) Admit() (breaker.Ticket, bool) {
	if !m.healthy.Load() {
		return breaker.Ticket{}, false
	}
	if m.breaker == nil {
		return breaker.Ticket{}, true
	}
	return m.breaker.Allow()
}

// Done reports an attempt's outcome to the member's breaker.
func (m *Member) Done(t breaker.Ticket, success bool) {
	if m.breaker != nil {
		m.breaker.Done(t, success)
	}
}

// Cancel hands back the breaker ticket of an attempt that was not made
// for a reason that says nothing about the member's health (a connection
// limit of the gateway's own).
func (m *Member) Cancel(t breaker.Ticket) {
	if m.breaker != nil {
		m.breaker.Cancel(t)
	}
}

// Acquire takes a stream slot of the member under its backend's
// Connections.MaxPerEndpoint, reporting false when the member is at the
// limit. A true result must be matched by one [Member.Release].
func (m *Member) Acquire() bool {
	n := m.streams.Add(1)
	if lim := m.maxStreams.Load(); lim > 0 && n > lim {
		m.streams.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot taken by [Member.Acquire].
func (m *Member) Release() { m.streams.Add(-1) }

// Streams returns the number of stream slots held.
func (m *Member) Streams() int64 { return m.streams.Load() }

// Table is an immutable member-picking table, swapped whole when the
// endpoints change.
type Table struct {
	members  []*Member // sorted by address
	schedule []uint32  // weighted round-robin order of members indices
	maglev   *maglev.Table
	policy   LBPolicy
	key      HashKey
	next     atomic.Uint64 // round-robin cursor
}

// Len returns the number of members.
func (t *Table) Len() int { return len(t.members) }

// Members returns the members, sorted by address. The slice must not be
// modified.
func (t *Table) Members() []*Member { return t.members }

// Maglev returns the Maglev lookup table of the Maglev policy, whose
// entries index [Table.Members], or nil under round robin. A request is
// picked by its key hash when it is not nil; [Table.Key] says what to
// hash.
func (t *Table) Maglev() *maglev.Table { return t.maglev }

// Key is the part of a request whose hash [Table.Pick] takes under the
// Maglev policy. Maglev without a key set hashes the client address.
func (t *Table) Key() HashKey { return t.key }

// Pick returns a member that admits a request, with its breaker ticket.
// hash is the request's key hash when hasKey (hash it with
// maglev.HashString). avoid, when not nil, is skipped unless it is the
// only member (a retry goes elsewhere). Pick returns nil when no member
// admits the request.
func (t *Table) Pick(hash uint64, hasKey bool, avoid *Member) (*Member, breaker.Ticket) {
	n := len(t.members)
	if n == 0 {
		return nil, breaker.Ticket{}
	}
	if t.maglev != nil && hasKey {
		i := t.maglev.Pick(hash)
		for j := range n {
			m := t.members[(i+j)%n]
			if m == avoid && n > 1 {
				continue
			}
			if tk, ok := m.Admit(); ok {
				return m, tk
			}
		}
		return nil, breaker.Ticket{}
	}
	s := t.schedule
	start := t.next.Add(1)
	for j := range uint64(len(s)) {
		m := t.members[s[(start+j)%uint64(len(s))]]
		if m == avoid && n > 1 {
			continue
		}
		if tk, ok := m.Admit(); ok {
			return m, tk
		}
	}
	return nil, breaker.Ticket{}
}

// Find returns the member with address addr that has not been removed,
// or nil. It does not allocate.
func (t *Table) Find(addr []byte) *Member {
	ms := t.members
	i, j := 0, len(ms)
	for i < j {
		h := int(uint(i+j) >> 1)
		if ms[h].addr < string(addr) {
			i = h + 1
		} else {
			j = h
		}
	}
	if i < len(ms) && ms[i].addr == string(addr) && !ms[i].removed.Load() {
		return ms[i]
	}
	return nil
}

// buildTable builds the picking table of members under lb.
func buildTable(members []*Member, weights map[string]uint32, lb LoadBalancer) (*Table, error) {
	t := &Table{members: members, policy: lb.Policy, key: lb.Key}
	if t.policy == Maglev && t.key.Source == KeyNone {
		t.key.Source = KeyClientAddress
	}
	if len(members) == 0 {
		return t, nil
	}
	w := make([]uint32, len(members))
	for i, m := range members {
		w[i] = max(weights[m.addr], 1)
	}
	t.schedule = smoothSchedule(w)
	if lb.Policy == Maglev {
		mb := make([]maglev.Backend, len(members))
		for i, m := range members {
			mb[i] = maglev.Backend{Name: m.addr, Weight: w[i]}
		}
		mt, err := maglev.Build(mb, maglev.Options{Size: maglevSize(len(members))})
		if err != nil {
			return nil, err
		}
		t.maglev = mt
	}
	return t, nil
}

// maglevSize picks a prime table size of at least 100 entries per member.
func maglevSize(n int) int {
	for _, m := range []int{1021, 4093, 16381, 65537} {
		if m >= 100*n {
			return m
		}
	}
	return maglev.DefaultSize
}

// smoothSchedule returns a weighted round-robin order in which each index
// appears in proportion to its weight, spread out rather than bunched (the
// "smooth weighted round robin" order). Weights are scaled down so the
// schedule has at most 64 entries per member.
func smoothSchedule(w []uint32) []uint32 {
	total := uint64(0)
	maxW := uint32(0)
	for _, x := range w {
		total += uint64(x)
		maxW = max(maxW, x)
	}
	limit := uint64(64 * len(w))
	if total > limit {
		scaled := make([]uint32, len(w))
		total = 0
		for i, x := range w {
			scaled[i] = max(uint32(uint64(x)*64/uint64(maxW)), 1)
			total += uint64(scaled[i])
		}
		w = scaled
	}
	sched := make([]uint32, 0, total)
	cur := make([]int64, len(w))
	for range total {
		best := 0
		for i := range w {
			cur[i] += int64(w[i])
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		sched = append(sched, uint32(best))
	}
	return sched
}

// Get returns the backend named name, or nil.
func (s *Set) Get(name string) *Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backends[name]
}

// Sync makes specs the set's backends, keeping the state of backends and
// members that stay, and returns the backends by name. transport gives
// the [Transport] of each spec (nil: plaintext HTTP/1.1). A spec that is
// invalid is reported in the error map under its name (or "specs[i]"
// when it has none, or is a duplicate) and left out, as is a backend
// whose transport fails; the others are served. Backends not in specs are
// removed.
//
// Sync changes no member that the returned backends' readers could be
// using in a way that breaks them; call [Set.Settle] once the caller has
// stopped handing out the backends that left (by publishing its own
// snapshot), to close their transports and start and stop health checks.
func (s *Set) Sync(specs []Spec, transport func(*Spec) Transport) (map[string]*Backend, map[string]error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make(map[string]error)
	out := make(map[string]*Backend, len(specs))
	if s.closed {
		errs["set"] = ErrClosed
		return out, errs
	}
	for i := range specs {
		sp := &specs[i]
		if sp.Name == "" {
			errs[fmt.Sprintf("specs[%d]", i)] = errors.New("name: must not be empty")
			continue
		}
		if _, dup := out[sp.Name]; dup {
			errs[sp.Name] = errors.New("duplicate name")
			continue
		}
		var t Transport
		if transport != nil {
			t = transport(sp)
		}
		b, err := s.sync(sp, t)
		if err != nil {
			errs[sp.Name] = err
			continue
		}
		out[sp.Name] = b
	}
	for name, b := range s.backends {
		if out[name] != b {
			for _, m := range b.members {
				if out[name] == nil || out[name].members[m.addr] != m {
					s.remove(b.name, m)
				}
			}
		}
	}
	s.backends = out
	s.syncLimits()
	return out, errs
}

// sync updates or creates the state of one backend. Called with s.mu held.
func (s *Set) sync(sp *Spec, t Transport) (*Backend, error) {
	if err := sp.validate(); err != nil {
		return nil, err
	}
	b := s.backends[sp.Name]
	if b == nil || b.transport.Key != t.Key {
		nb := &Backend{name: sp.Name, transport: t, members: make(map[string]*Member)}
		if t.TLS != nil {
			tc, err := t.TLS()
			if err != nil {
				return nil, err
			}
			nb.tlsConfig = tc
		}
		b = nb
	}
	old := b.spec
	b.spec = sp
	if err := s.setEndpoints(b, sp.Endpoints); err != nil {
		b.spec = old
		return nil, err
	}
	return b, nil
}

// remove marks a member removed and tells the hooks.
func (s *Set) remove(backend string, m *Member) {
	if m.removed.Swap(true) {
		return
	}
	if f := s.opts.Hooks.Removed; f != nil {
		f(backend, m.addr)
	}
}

// setEndpoints builds the member set and table of a backend, keeping the
// state of members that stay. Called with s.mu held.
func (s *Set) setEndpoints(b *Backend, eps []Endpoint) error {
	weights := make(map[string]uint32, len(eps))
	list := make([]*Member, 0, len(eps))
	seen := make(map[string]*Member, len(eps))
	for i, ep := range eps {
		if _, _, err := net.SplitHostPort(ep.Address); err != nil {
			return fmt.Errorf("endpoints[%d].address %q: %w", i, ep.Address, err)
		}
		if seen[ep.Address] != nil {
			weights[ep.Address] += max(ep.Weight, 1)
			continue
		}
		weights[ep.Address] = max(ep.Weight, 1)
		m := b.members[ep.Address]
		if m == nil {
			var err error
			m, err = s.newMember(b, ep.Address)
			if err != nil {
				return fmt.Errorf("endpoints[%d]: %w", i, err)
			}
		}
		seen[ep.Address] = m
		list = append(list, m)
	}
	slices.SortFunc(list, func(x, y *Member) int { return strings.Compare(x.addr, y.addr) })
	t, err := buildTable(list, weights, b.spec.LoadBalancer)
	if err != nil {
		return fmt.Errorf("loadBalancer: %w", err)
	}
	for addr, m := range b.members {
		if seen[addr] == nil {
			s.remove(b.name, m)
		}
	}
	for _, m := range seen {
		m.maxStreams.Store(int64(b.spec.Connections.MaxPerEndpoint))
	}
	b.members = seen
	b.lb.Store(t)
	return nil
}

// newMember creates the state of a new member.
func (s *Set) newMember(b *Backend, addr string) (*Member, error) {
	m := &Member{addr: addr}
	m.healthy.Store(true)
	if s.opts.Pool != nil {
		m.key = pool.Key{Address: addr, Protocol: b.transport.Protocol, TLS: b.tlsConfig}
		rt, err := s.opts.Pool.Get(m.key)
		if err != nil {
			return nil, err
		}
		m.rt = rt
		// Limits before the member is in a table; syncLimits settles
		// them exactly when other backends share the transport.
		rt.SetLimits(tighterLimits(rt.Limits(), poolLimits(b.spec.Connections)))
	}
	cb := b.spec.CircuitBreaker
	m.count5xx = cb != nil && cb.Count5xx
	if cb == nil || !cb.Disabled {
		var cfg breaker.Options
		if cb != nil {
			cfg = cb.Options
		}
		name, hook, log := b.name, s.opts.Hooks.Breaker, s.log
		user := cfg.OnStateChange
		cfg.OnStateChange = func(from, to breaker.State) {
			if hook != nil {
				hook(name, addr, from, to)
			}
			log.Info("circuit breaker", "backend", name, "endpoint", addr, "from", from.String(), "to", to.String())
			if user != nil {
				user(from, to)
			}
		}
		br, err := breaker.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("circuitBreaker: %w", err)
		}
		m.breaker = br
	}
	return m, nil
}

// UpdateEndpoints replaces the endpoints of one backend without a full
// [Set.Sync]: the fast path for endpoint churn. The state of members that
// stay is kept; the new table is in effect when it returns, and the
// transports and health checks of members that left are settled.
func (s *Set) UpdateEndpoints(backend string, eps []Endpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	b := s.backends[backend]
	if b == nil {
		return fmt.Errorf("backend %q is not configured", backend)
	}
	if err := s.setEndpoints(b, eps); err != nil {
		return fmt.Errorf("backend %q: %w", backend, err)
	}
	s.syncLimits()
	s.settle()
	return nil
}

// Settle closes the transports no backend of the set uses any more and
// starts and stops health checks to match the set. Call it after
// [Set.Sync], once the backends that left are no longer handed out.
func (s *Set) Settle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.settle()
}

func (s *Set) settle() {
	if s.opts.Pool != nil {
		var keys []pool.Key
		for _, b := range s.backends {
			for _, m := range b.members {
				keys = append(keys, m.key)
			}
		}
		s.opts.Pool.Retain(keys)
	}
	s.health.sync(s.backends)
}

// Close stops every health check and waits for the probes to end. The
// pool, which the caller owns, is not closed.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.health.stop()
}

// poolLimits maps a backend's connection limits onto the pool's.
func poolLimits(c ConnectionLimits) pool.Limits {
	return pool.Limits{
		MaxConns:    c.MaxPerEndpoint,
		IdleTimeout: c.IdleTimeout,
		MaxRequests: c.MaxRequests,
		MaxLifetime: c.MaxLifetime,
	}
}

// tighterLimits combines the limits of two backends sharing an endpoint
// transport: field by field, the smaller value set.
func tighterLimits(a, b pool.Limits) pool.Limits {
	least := func(x, y int64) int64 {
		if x == 0 || y != 0 && y < x {
			return y
		}
		return x
	}
	return pool.Limits{
		MaxConns:    int(least(int64(a.MaxConns), int64(b.MaxConns))),
		IdleTimeout: time.Duration(least(int64(a.IdleTimeout), int64(b.IdleTimeout))),
		MaxRequests: int(least(int64(a.MaxRequests), int64(b.MaxRequests))),
		MaxLifetime: time.Duration(least(int64(a.MaxLifetime), int64(b.MaxLifetime))),
	}
}

// syncLimits gives every member transport the connection limits of the
// backends that use it: a backend's [ConnectionLimits], or, when several
// backends share an endpoint (same address, protocol and TLS), the
// smaller value of each field they set. Changing them interrupts no
// request. Called with s.mu held, after s.backends is updated.
func (s *Set) syncLimits() {
	if s.opts.Pool == nil {
		return
	}
	want := make(map[*pool.Endpoint]pool.Limits)
	for _, b := range s.backends {
		l := poolLimits(b.spec.Connections)
		for _, m := range b.members {
			if cur, ok := want[m.rt]; ok {
				want[m.rt] = tighterLimits(cur, l)
			} else {
				want[m.rt] = l
			}
		}
	}
	for rt, l := range want {
		if rt.Limits() != l {
			rt.SetLimits(l)
		}
	}
}
