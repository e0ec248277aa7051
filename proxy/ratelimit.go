package proxy

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/ratelimit"
	"github.com/rauta/rauta/upstream"
)

// RateLimitDraft names the version of the IETF httpapi working group's
// ratelimit-headers draft whose RateLimit and RateLimit-Policy fields the
// proxy sends with its 429 answers.
//
// The fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026),
// sections 3 and 4: each is a List of one Item whose bare item is the
// policy name as an sf-string, with Integer parameters:
//
//	RateLimit-Policy: "name";q=100;w=10
//	RateLimit: "name";r=0;t=3
//
// q is the limit's quota per window (Rate × Window for the whole gateway,
// rounded down), w the window in whole seconds, r the quota left (0 on a
// 429) and t the seconds until more quota is available, the same instant
// as Retry-After. The draft's later text (version -12, November 2026, after
// the working group settled its issue 158 at IETF 124) lets the policy name
// be a Token or a String; a String, as sent here, is valid under both, and
// the meaning of r and t is unchanged.
const RateLimitDraft = "draft-ietf-httpapi-ratelimit-headers-11"

// maxRateLimitKeys bounds the buckets of one keyed rate limit; past it the
// least recently used keys are forgotten (see ratelimit.Keyed).
const maxRateLimitKeys = 100_000

// maxRateLimitName bounds the length of a RateLimit.Name, which labels a
// metric and travels in response fields.
const maxRateLimitName = 256

// limiter is one rate limit's budget: one bucket, or one per key. Limits
// with the same Name share a limiter wherever they appear in the Config,
// and a limiter outlives configurations while its identity (Name, or place
// for a limit without a Name, and numbers) stays the same.
type limiter struct {
	id     string // registry key
	name   string // policy name in fields and metrics
	key    upstream.HashKey
	rate   float64 // whole-gateway rate
	burst  int     // whole-gateway burst
	policy []string
	shared int // the replica count the buckets are sized for

	bucket *ratelimit.Bucket
	keyed  *ratelimit.Keyed
}

// take takes a token for r at time now.
func (l *limiter) take(r *http.Request, now time.Time) (bool, time.Duration) {
	if l.keyed == nil {
		return l.bucket.TakeN(now, 1)
	}
	return l.keyed.TakeN(l.keyOf(r), now, 1)
}

// refund gives back the token take took for r.
func (l *limiter) refund(r *http.Request) {
	if l.keyed == nil {
		l.bucket.Refund(1)
		return
	}
	l.keyed.Refund(l.keyOf(r), 1)
}

// keyOf returns r's bucket key. Requests without the key (no such header,
// cookie or query parameter) share the bucket of the empty key.
func (l *limiter) keyOf(r *http.Request) string {
	k, _ := requestKey(r, l.key)
	return k
}

// shareOf returns the rate and burst one of n replicas enforces: each
// divided by n, the burst rounded and at least 1.
func shareOf(rate float64, burst, n int) (float64, int) {
	n = max(n, 1)
	return rate / float64(n), max(1, int(math.Round(float64(burst)/float64(n))))
}

// setShare sizes the buckets for n replicas.
func (l *limiter) setShare(n int) error {
	n = max(n, 1)
	if n == l.shared {
		return nil
	}
	rate, burst := shareOf(l.rate, l.burst, n)
	var err error
	if l.keyed != nil {
		err = l.keyed.SetLimit(rate, burst)
	} else {
		err = l.bucket.SetLimit(rate, burst)
	}
	if err == nil {
		l.shared = n
	}
	return err
}

// SetReplicas tells the proxy that n processes serve the same
// configuration, so that each enforces its share of every rate limit: a
// limit's Rate and Burst are divided by n (the burst rounded, at least 1).
// n < 1 means 1, the default. The change takes effect at once, without an
// Apply: each bucket keeps the tokens it holds, up to its new burst, and
// refills at its new rate. SetReplicas is safe for concurrent use with
// requests and with Apply.
//
// The share is exact for a limit whose traffic is spread evenly over the
// replicas. When load is uneven, a replica receiving more than its share
// refuses early while others have tokens left; a keyed limit whose client
// reaches only one replica admits that client 1/n of its limit.
func (p *Proxy) SetReplicas(n int) {
	n = max(n, 1)
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if n == max(p.replicas, 1) {
		return
	}
	p.replicas = n
	for _, l := range p.limiters {
		if err := l.setShare(n); err != nil {
			// A share too small for the bucket's arithmetic (a rate of
			// less than a token in 73 years): keep the previous share.
			p.log.Warn("rate limit share not applied", "limit", l.name, "replicas", n, "error", err)
		}
	}
}

// limitScope says where a list of rate limits sits in the Config, for
// error messages, generated names and bucket identities.
type limitScope struct {
	field string // "listener \"x\" rateLimits", say
	place string // identity of the place, for limits without a Name
}

// validateRateLimit checks one limit; the error names the field within it.
func validateRateLimit(rl *RateLimit) error {
	switch {
	case len(rl.Name) > maxRateLimitName:
		return fmt.Errorf("name: longer than %d bytes", maxRateLimitName)
	case !sfStringOK(rl.Name):
		return fmt.Errorf("name %q: only printable ASCII characters may be used (it is sent as a structured-field string)", rl.Name)
	case math.IsNaN(rl.Rate) || math.IsInf(rl.Rate, 0) || rl.Rate <= 0:
		return fmt.Errorf("rate %v: must be a finite number > 0", rl.Rate)
	case rl.Burst <= 0:
		return fmt.Errorf("burst %d: must be > 0", rl.Burst)
	case rl.Window < 0:
		return fmt.Errorf("window %v: must not be negative", rl.Window)
	}
	if err := rl.Key.Validate(); err != nil {
		return fmt.Errorf("key.%w", err)
	}
	if _, err := ratelimit.NewBucket(ratelimit.BucketOptions{Rate: rl.Rate, Burst: rl.Burst}); err != nil {
		return fmt.Errorf("rate %v, burst %d: %w", rl.Rate, rl.Burst, err)
	}
	return nil
}

// sfStringOK reports whether s can be sent as a structured-field string:
// printable ASCII only.
func sfStringOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// sfString quotes s as a structured-field string (RFC 9651 section 3.3.3).
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// validateRequestLimits checks RequestLimits; the error names the field.
func validateRequestLimits(l *RequestLimits) error {
	switch {
	case l.MaxBodyBytes < 0:
		return fmt.Errorf("maxBodyBytes %d: must not be negative", l.MaxBodyBytes)
	case l.ReadTimeout < 0:
		return fmt.Errorf("readTimeout %v: must not be negative", l.ReadTimeout)
	case l.WriteTimeout < 0:
		return fmt.Errorf("writeTimeout %v: must not be negative", l.WriteTimeout)
	}
	return nil
}

// limitersFor returns the limiters of the limits at one place in the
// Config, validating them. It is called with applyMu held, during Apply.
func (p *Proxy) limitersFor(sc limitScope, rls []RateLimit) ([]*limiter, error) {
	var out []*limiter
	for i := range rls {
		rl := &rls[i]
		if err := validateRateLimit(rl); err != nil {
			return nil, fmt.Errorf("%s[%d].%w", sc.field, i, err)
		}
		l, err := p.limiterFor(sc, i, rl)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", sc.field, i, err)
		}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// limiterFor returns the limiter of a valid limit, found again by identity
// or made anew, and marks it used by the Apply in progress.
func (p *Proxy) limiterFor(sc limitScope, i int, rl *RateLimit) (*limiter, error) {
	name := rl.Name
	if name == "" {
		name = sc.place + "/rateLimits/" + strconv.Itoa(i)
	}
	window := rl.Window
	if window <= 0 {
		window = time.Second
	}
	w := max(int64(math.Ceil(window.Seconds())), 1)
	// The window only changes what the fields announce: it is part of
	// what limits sharing a name must agree on, not of the buckets'
	// identity.
	id := fmt.Sprintf("%s\x00%v\x00%d\x00%v\x00%s", name, rl.Rate, rl.Burst, rl.Key.Source, rl.Key.Name)
	sig := id + "\x00" + strconv.FormatInt(w, 10)
	if prev, ok := p.limitNames[name]; ok && prev != sig {
		return nil, fmt.Errorf("name %q: already used in this configuration, first at %s, by a limit with other settings; limits that share a name share one budget and must be equal", name, p.limitUsers[name])
	}
	p.limitNames[name] = sig
	if _, ok := p.limitUsers[name]; !ok {
		p.limitUsers[name] = sc.place
	}
	p.limitersUsed[id] = true
	quota := int64(math.Floor(rl.Rate*float64(w) + 1e-9))
	policy := sfString(name) + ";q=" + strconv.FormatInt(quota, 10) + ";w=" + strconv.FormatInt(w, 10)
	prev := p.limiters[id]
	if prev != nil && prev.policy[0] == policy {
		return prev, nil
	}
	l := &limiter{
		id:     id,
		name:   name,
		key:    rl.Key,
		rate:   rl.Rate,
		burst:  rl.Burst,
		policy: []string{policy},
		shared: max(p.replicas, 1),
	}
	if prev != nil {
		// A new window: new fields, the same buckets. The snapshot in
		// service keeps the previous limiter, which shares them.
		l.bucket, l.keyed, l.shared = prev.bucket, prev.keyed, prev.shared
		p.limiters[id] = l
		return l, nil
	}
	rate, burst := shareOf(rl.Rate, rl.Burst, l.shared)
	var err error
	if rl.Key.Source == upstream.KeyNone {
		l.bucket, err = ratelimit.NewBucket(ratelimit.BucketOptions{Rate: rate, Burst: burst})
	} else {
		l.keyed, err = ratelimit.NewKeyed(ratelimit.KeyedOptions{Rate: rate, Burst: burst, MaxKeys: maxRateLimitKeys})
	}
	if err != nil {
		return nil, err
	}
	p.limiters[id] = l
	return l, nil
}

// beginLimits starts the limiter bookkeeping of an Apply.
func (p *Proxy) beginLimits() {
	p.limitersUsed = make(map[string]bool)
	p.limitNames = make(map[string]string)
	p.limitUsers = make(map[string]string)
}

// endLimits forgets the limiters the Apply that just ended did not use.
func (p *Proxy) endLimits() {
	for id := range p.limiters {
		if !p.limitersUsed[id] {
			delete(p.limiters, id)
		}
	}
}

// listenerPolicy is what a listener adds to the requests it serves.
type listenerPolicy struct {
	limits []*limiter
	req    RequestLimits
}

// compileListenerPolicies validates and compiles the rate and request
// limits of every listener. An error rejects the whole Config, like the
// other listener checks: a listener cannot be served without its limits.
func (p *Proxy) compileListenerPolicies(cfg *Config) (map[string]*listenerPolicy, error) {
	out := make(map[string]*listenerPolicy, len(cfg.Listeners))
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if err := validateRequestLimits(&l.RequestLimits); err != nil {
			return nil, fmt.Errorf("listener %q: requestLimits.%w", l.Name, err)
		}
		lims, err := p.limitersFor(limitScope{field: fmt.Sprintf("listener %q: rateLimits", l.Name), place: "listener/" + l.Name}, l.RateLimits)
		if err != nil {
			return nil, err
		}
		if len(lims) > 0 || l.RequestLimits != (RequestLimits{}) {
			out[l.Name] = &listenerPolicy{limits: lims, req: l.RequestLimits}
		}
	}
	return out, nil
}

// routeLimits validates and compiles a route's own limits; the error names
// the route's field.
func (p *Proxy) routeLimits(r *Route) ([]*limiter, error) {
	if err := validateRequestLimits(&r.RequestLimits); err != nil {
		return nil, fmt.Errorf("route requestLimits.%w", err)
	}
	return p.limitersFor(limitScope{field: "route rateLimits", place: "route/" + r.Namespace + "/" + r.Name}, r.RateLimits)
}

// ruleLimits compiles the limits of rule number j of route r: the route's
// and the rule's, and the rule's request limits over the route's.
func (p *Proxy) ruleLimits(cr *compiledRule, r *Route, j int, rule *Rule) error {
	lims, err := p.routeLimits(r)
	if err != nil {
		return err
	}
	if err := validateRequestLimits(&rule.RequestLimits); err != nil {
		return fmt.Errorf("requestLimits.%w", err)
	}
	place := "route/" + r.Namespace + "/" + r.Name + "/rules/"
	if rule.Name != "" {
		place += rule.Name
	} else {
		place += strconv.Itoa(j)
	}
	own, err := p.limitersFor(limitScope{field: "rateLimits", place: place}, rule.RateLimits)
	if err != nil {
		return err
	}
	for _, l := range own {
		if !slices.Contains(lims, l) {
			lims = append(lims, l)
		}
	}
	cr.limiters = lims
	cr.req = rule.RequestLimits.over(r.RequestLimits)
	return nil
}

// over returns l with its zero fields taken from base.
func (l RequestLimits) over(base RequestLimits) RequestLimits {
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = base.MaxBodyBytes
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = base.ReadTimeout
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = base.WriteTimeout
	}
	return l
}

// admit applies the rate limits and request limits that cover a routed
// request. It answers the request and reports false when one refuses it.
func (p *Proxy) admit(w http.ResponseWriter, r *http.Request, pl *portListener, cr *compiledRule, x *requestState) bool {
	var ll []*limiter
	var lreq RequestLimits
	if pl != nil && pl.pol != nil {
		ll, lreq = pl.pol.limits, pl.pol.req
	}
	if len(ll)+len(cr.limiters) > 0 {
		// The time now, not the request's start: a request delayed before
		// this point must not be taken for one that came earlier than
		// others already admitted.
		if l, wait := takeAll(ll, cr.limiters, r, time.Now()); l != nil {
			p.refuse(w, x, l, wait)
			return false
		}
	}
	return p.limitRequest(w, r, cr.req.over(lreq), x)
}

// takeAll takes a token from every limiter of the listener (ll) and of the
// rule (rl), a limiter in both once. When one refuses, the tokens already
// taken are given back, so that a refused request costs no limit anything,
// and the refusing limiter is returned with its wait.
func takeAll(ll, rl []*limiter, r *http.Request, now time.Time) (*limiter, time.Duration) {
	for i, l := range ll {
		if ok, wait := l.take(r, now); !ok {
			refundAll(ll[:i], nil, r)
			return l, wait
		}
	}
	for i, l := range rl {
		if slices.Contains(ll, l) {
			continue
		}
		if ok, wait := l.take(r, now); !ok {
			refundAll(ll, rl[:i], r)
			return l, wait
		}
	}
	return nil, 0
}

func refundAll(ll, rl []*limiter, r *http.Request) {
	for _, l := range ll {
		l.refund(r)
	}
	for _, l := range rl {
		if !slices.Contains(ll, l) {
			l.refund(r)
		}
	}
}

// refuse answers 429 for limiter l: Retry-After, and the RateLimit-Policy
// and RateLimit fields of [RateLimitDraft] naming l. Admitted responses do
// not carry the fields.
func (p *Proxy) refuse(w http.ResponseWriter, x *requestState, l *limiter, wait time.Duration) {
	secs := int64(1)
	if wait > time.Second {
		secs = int64(min(wait, 1<<62)+time.Second-1) / int64(time.Second)
	}
	s := strconv.FormatInt(secs, 10)
	h := w.Header()
	h["Retry-After"] = []string{s}
	h["Ratelimit-Policy"] = l.policy
	h["Ratelimit"] = []string{sfString(l.name) + ";r=0;t=" + s}
	x.fail(w, http.StatusTooManyRequests, reasonRateLimited, "rate limited\n")
	p.rateLimited.WithLabelValues(l.name, x.route).Inc()
}

// newRateLimitMetric registers the counter of requests refused by rate
// limits.
func newRateLimitMetric(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_rate_limited_requests_total",
		Help: "Requests refused with 429 by a rate limit, by limit (RateLimit.Name, or its place in the configuration) and route.",
	}, []string{"limit", "route"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}
