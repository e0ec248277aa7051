package upstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/rauta/rauta/breaker"
)

// Spec is the configuration of a backend that its [Backend] state follows:
// its endpoints and the policies that pick and protect them. A program
// using a [Set] on its own fills it directly; rauta's proxy carries it in
// its own backend type, beside the HTTP settings (protocol, TLS, retries).
type Spec struct {
	// Name identifies the backend, e.g. "namespace/service:port". State that
	// must survive a configuration change (transports, breakers, health) is
	// keyed by it and by endpoint address.
	Name string `json:"name"`
	// Endpoints are the addresses traffic is balanced over. They may also
	// be replaced on their own with [Set.UpdateEndpoints].
	Endpoints []Endpoint `json:"endpoints"`
	// LoadBalancer picks an endpoint for each request or connection.
	LoadBalancer LoadBalancer `json:"loadBalancer,omitzero"`
	// HealthCheck, if set, probes every endpoint actively; failing
	// endpoints are taken out of the pick until they pass again.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// CircuitBreaker configures the per-endpoint circuit breakers (passive
	// health and outlier ejection). Nil uses the breaker package's defaults;
	// set Disabled to turn them off.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	// Connections bound the connections to each endpoint; zero fields
	// use the pool's defaults (see [Options].Pool).
	Connections ConnectionLimits `json:"connections,omitzero"`
}

// ConnectionLimits bound the connections to each endpoint of a backend.
// Zero fields use the pool's defaults. They govern HTTP/1.1 connections (also
// the HTTP/1.1 side of an HTTP/2 backend: upgrades and ALPN fallback);
// HTTP/2 connections multiplex requests and follow the pool's settings.
// MaxPerEndpoint also bounds the forwarded streams (TCP, TLS passthrough)
// to one endpoint, counted apart from HTTP connections. Changing them
// takes effect at once without interrupting requests in flight.
// Backends sharing an endpoint (same address, protocol and TLS settings)
// share its connections, under the smaller value of each limit they set.
type ConnectionLimits struct {
	// MaxPerEndpoint bounds the open HTTP/1.1 connections to one
	// endpoint; a request finding it at the limit goes to another
	// endpoint, or is answered 503 (after the pool's ConnWaitTimeout,
	// if set, without a connection freed). It also bounds the streams
	// forwarded to one endpoint ([Member.Acquire]).
	MaxPerEndpoint int `json:"maxPerEndpoint,omitempty"`
	// IdleTimeout closes a connection idle this long.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// MaxRequests closes a connection after it carried this many
	// requests.
	MaxRequests int `json:"maxRequests,omitempty"`
	// MaxLifetime closes a connection this long after it was opened,
	// once its request in progress is done.
	MaxLifetime time.Duration `json:"maxLifetime,omitempty"`
}

// Endpoint is one address of a backend.
type Endpoint struct {
	// Address is "ip:port".
	Address string `json:"address"`
	// Weight is the endpoint's relative share; zero means 1.
	Weight uint32 `json:"weight,omitempty"`
}

// LBPolicy selects how a backend's endpoints are picked.
type LBPolicy uint8

// Load-balancing policies.
const (
	// RoundRobin cycles through the endpoints in proportion to their
	// weights.
	RoundRobin LBPolicy = iota
	// Maglev hashes a key of the request (see [HashKey]) onto a Maglev
	// table, so that requests with the same key reach the same endpoint
	// while the endpoint set is stable (session affinity), and few keys
	// move when it changes.
	Maglev
)

// String returns "RoundRobin" or "Maglev".
func (p LBPolicy) String() string {
	switch p {
	case RoundRobin:
		return "RoundRobin"
	case Maglev:
		return "Maglev"
	}
	return "LBPolicy(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (p LBPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// KeySource is the part of a request a [HashKey] reads.
type KeySource uint8

// Key sources.
const (
	// KeyNone reads nothing: every request has the same key.
	KeyNone KeySource = iota
	// KeyClientAddress is the client's IP address (without the port).
	KeyClientAddress
	// KeyHeader is the first value of the header named by HashKey.Name.
	KeyHeader
	// KeyCookie is the value of the cookie named by HashKey.Name.
	KeyCookie
	// KeyQuery is the first value of the query parameter named by
	// HashKey.Name.
	KeyQuery
)

// String returns the source's name.
func (s KeySource) String() string {
	switch s {
	case KeyNone:
		return "None"
	case KeyClientAddress:
		return "ClientAddress"
	case KeyHeader:
		return "Header"
	case KeyCookie:
		return "Cookie"
	case KeyQuery:
		return "Query"
	}
	return "KeySource(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s KeySource) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// HashKey names the part of a request that keys a hash or a bucket.
type HashKey struct {
	// Source is where the key comes from.
	Source KeySource `json:"source"`
	// Name is the header, cookie or query parameter name for KeyHeader,
	// KeyCookie and KeyQuery.
	Name string `json:"name,omitempty"`
}

// LoadBalancer configures endpoint picking for a backend.
type LoadBalancer struct {
	// Policy is RoundRobin (the default) or Maglev.
	Policy LBPolicy `json:"policy"`
	// Key is what Maglev hashes. The zero value hashes the client address.
	// A request without the key (no such header or cookie) is balanced
	// round robin.
	Key HashKey `json:"key,omitzero"`
}

// HealthCheckKind selects the probe of a [HealthCheck].
type HealthCheckKind uint8

// Health check kinds.
const (
	// HealthTCP connects to the endpoint and closes the connection.
	HealthTCP HealthCheckKind = iota
	// HealthHTTP sends GET Path and expects one of the
	// HealthCheck.ExpectedStatuses (by default a 2xx or 3xx status).
	HealthHTTP
)

// String returns "TCP" or "HTTP".
func (k HealthCheckKind) String() string {
	switch k {
	case HealthTCP:
		return "TCP"
	case HealthHTTP:
		return "HTTP"
	}
	return "HealthCheckKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (k HealthCheckKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// HealthCheck configures active health checking of a backend's endpoints.
type HealthCheck struct {
	// Kind is the probe: a TCP connect or an HTTP GET.
	Kind HealthCheckKind `json:"kind"`
	// Path is the request path of an HTTP probe; empty means "/".
	Path string `json:"path,omitempty"`
	// Host is the Host header of an HTTP probe; empty uses the address.
	Host string `json:"host,omitempty"`
	// Interval is the time between probes; zero means 5s.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds one probe; zero means 1s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// HealthyThreshold is the number of consecutive passing probes that
	// bring an unhealthy endpoint back; zero means 2.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is the number of consecutive failing probes that
	// take an endpoint out; zero means 3.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// ExpectedStatuses are the statuses that pass an HTTP probe; empty
	// means 200 to 399.
	ExpectedStatuses []StatusRange `json:"expectedStatuses,omitempty"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	// Start is the first status of the range.
	Start int `json:"start"`
	// End is the last; a zero End means Start.
	End int `json:"end,omitempty"`
}

// CircuitBreaker configures the per-endpoint breakers of a backend.
//
// By default a breaker counts as failures only attempts that got no
// response: connections refused or reset, TLS failures, timeouts. A 5xx
// response is the application's answer, passed to the client as it is (and
// retried if the rule's retry policy says so); set Count5xx to count it as
// a failure too (outlier ejection by response status).
type CircuitBreaker struct {
	// Disabled turns the breakers off.
	Disabled bool `json:"disabled,omitempty"`
	// Count5xx counts responses with a 5xx status as failures.
	Count5xx bool `json:"count5xx,omitempty"`
	// Options are the breakers' options (breaker.New); the zero value
	// uses the package defaults.
	Options breaker.Options `json:"options,omitzero"`
}

// validate checks a spec. It reports the first error found, naming the
// field; callers name the backend.
func (s *Spec) validate() error {
	lb := &s.LoadBalancer
	if lb.Policy != RoundRobin && lb.Policy != Maglev {
		return fmt.Errorf("loadBalancer.policy: unknown value %v", lb.Policy)
	}
	if err := lb.Key.Validate(); err != nil {
		return fmt.Errorf("loadBalancer.key.%w", err)
	}
	if hc := s.HealthCheck; hc != nil {
		if err := hc.validate(); err != nil {
			return fmt.Errorf("healthCheck.%w", err)
		}
	}
	c := &s.Connections
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"maxPerEndpoint", int64(c.MaxPerEndpoint)},
		{"idleTimeout", int64(c.IdleTimeout)},
		{"maxRequests", int64(c.MaxRequests)},
		{"maxLifetime", int64(c.MaxLifetime)},
	} {
		if f.v < 0 {
			return fmt.Errorf("connections.%s: must not be negative", f.name)
		}
	}
	return nil
}

// Validate checks a hash key (of a load balancer or a rate limit): a known
// source, with the name its source reads and no name for the others.
// Errors start with the field name.
func (k HashKey) Validate() error {
	switch k.Source {
	case KeyNone, KeyClientAddress:
		if k.Name != "" {
			return fmt.Errorf("name: must be empty for source %v", k.Source)
		}
		return nil
	case KeyHeader:
		if !httpguts.ValidHeaderFieldName(k.Name) {
			return fmt.Errorf("name %q: must be a header name", k.Name)
		}
		return nil
	case KeyCookie, KeyQuery:
		if k.Name == "" {
			return fmt.Errorf("name: required for source %v", k.Source)
		}
		return nil
	}
	return fmt.Errorf("source: unknown value %v", k.Source)
}

// validate checks a health check. Errors start with the field name.
func (hc *HealthCheck) validate() error {
	if hc.Kind != HealthTCP && hc.Kind != HealthHTTP {
		return fmt.Errorf("kind: unknown value %v", hc.Kind)
	}
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		return fmt.Errorf("path: %q must start with /", hc.Path)
	}
	switch {
	case hc.Interval < 0:
		return errors.New("interval: must not be negative")
	case hc.Timeout < 0:
		return errors.New("timeout: must not be negative")
	case hc.HealthyThreshold < 0:
		return errors.New("healthyThreshold: must not be negative")
	case hc.UnhealthyThreshold < 0:
		return errors.New("unhealthyThreshold: must not be negative")
	}
	if len(hc.ExpectedStatuses) > 0 && hc.Kind != HealthHTTP {
		return fmt.Errorf("expectedStatuses: only HTTP health checks have statuses (kind %v)", hc.Kind)
	}
	for i, r := range hc.ExpectedStatuses {
		if r.Start < 100 || r.Start > 599 {
			return fmt.Errorf("expectedStatuses[%d].start: %d is not a status code (100 to 599)", i, r.Start)
		}
		if r.End != 0 && (r.End < r.Start || r.End > 599) {
			return fmt.Errorf("expectedStatuses[%d].end: %d must be between start (%d) and 599", i, r.End, r.Start)
		}
	}
	return nil
}

// expects reports whether an HTTP probe's status passes.
func (hc *HealthCheck) expects(code int) bool {
	if len(hc.ExpectedStatuses) == 0 {
		return code >= 200 && code < 400
	}
	for _, r := range hc.ExpectedStatuses {
		if code >= r.Start && code <= max(r.End, r.Start) {
			return true
		}
	}
	return false
}

func (s HealthCheck) withDefaults() HealthCheck {
	if s.Path == "" {
		s.Path = "/"
	}
	if s.Interval <= 0 {
		s.Interval = 5 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	if s.HealthyThreshold <= 0 {
		s.HealthyThreshold = 2
	}
	if s.UnhealthyThreshold <= 0 {
		s.UnhealthyThreshold = 3
	}
	return s
}
