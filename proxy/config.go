package proxy

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// Config is everything the proxy serves: listeners, the routes attached to
// them and the backends the routes forward to. It is plain data with no
// Kubernetes types; the translator builds it from Gateway API objects, and a
// Go program can build it directly.
//
// A Config handed to [Proxy.Apply] must not be modified afterwards.
type Config struct {
	// Listeners are the ports the proxy accepts connections on.
	Listeners []Listener `json:"listeners"`
	// Routes are the HTTP routes, each attached to one or more listeners.
	Routes []Route `json:"routes"`
	// StreamRoutes are the routes of TCP, TLS and UDP listeners
	// (TCPRoutes, TLSRoutes and UDPRoutes), attached to listeners by name
	// and referring to Backends by name; see package l4 for how they are
	// served.
	StreamRoutes []l4.Route `json:"streamRoutes,omitempty"`
	// Backends are the upstream services the routes refer to by name.
	Backends []Backend `json:"backends"`
}

// ListenerProtocol is the protocol a [Listener] accepts.
type ListenerProtocol uint8

// Listener protocols.
const (
	// HTTP accepts cleartext HTTP/1.1 and HTTP/2 (h2c with prior knowledge
	// or by Upgrade).
	HTTP ListenerProtocol = iota
	// HTTPS terminates TLS, selecting a certificate by SNI, and serves
	// HTTP/1.1 and HTTP/2 as negotiated by ALPN.
	HTTPS
	// TCP forwards each connection as a stream to a backend of the
	// listener's route ([Config].StreamRoutes); see package l4.
	TCP
	// TLS routes each connection by the server name of its ClientHello
	// to a route of [Config].StreamRoutes, and either passes the TLS
	// bytes through untouched ([Listener].Passthrough) or terminates TLS
	// with the listener's Certificates and forwards the plaintext.
	TLS
	// UDP forwards the datagrams of each client address (a session) to a
	// backend of the listener's route ([Config].StreamRoutes), on a socket
	// bound with net.ListenPacket; see [l4.Forwarder.ServePacket]. A UDP
	// listener may share its port number with a TCP, TLS, HTTP or HTTPS
	// one: they are different sockets.
	UDP
)

// String returns "HTTP", "HTTPS", "TCP", "TLS" or "UDP".
func (p ListenerProtocol) String() string {
	switch p {
	case HTTP:
		return "HTTP"
	case HTTPS:
		return "HTTPS"
	case TCP:
		return "TCP"
	case TLS:
		return "TLS"
	case UDP:
		return "UDP"
	}
	return "ListenerProtocol(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (p ListenerProtocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Listener is one Gateway listener. Several listeners may share an address
// and port when they have the same protocol; a request is then served by the
// listener whose Hostname matches its host most specifically (an exact name,
// then the longest wildcard, then a listener without a hostname).
type Listener struct {
	// Name identifies the listener; routes attach to it by name. It must be
	// unique in the Config, e.g. "namespace/gateway/listener".
	Name string `json:"name"`
	// Address is the IP address to bind; empty binds every address.
	Address string `json:"address,omitempty"`
	// Port is the TCP port. Zero binds an ephemeral port (see [Proxy.Addr]).
	Port int `json:"port"`
	// Unbound keeps the listener off every socket: the proxy binds nothing
	// for it, and it is served only where the program mounts
	// [Proxy.Handler] for it, in its own server. Address and Port must then
	// be empty, and Certificates and ClientValidation too (TLS is the
	// mounting server's). Protocol HTTPS says the requests arrive over TLS
	// even when the mounting server sees none (TLS ended in front of it).
	Unbound bool `json:"unbound,omitempty"`
	// Protocol is HTTP or HTTPS.
	Protocol ListenerProtocol `json:"protocol"`
	// Hostname, when set, restricts the listener to requests for this host:
	// an exact name or a wildcard "*.example.com" (one or more labels).
	Hostname string `json:"hostname,omitempty"`
	// Certificates are the server certificates of an HTTPS listener. The
	// certificates of every listener on one port are pooled and selected by
	// SNI; the first certificate of the first listener is the default.
	// A TLS listener that terminates uses its own certificates only.
	Certificates []Certificate `json:"certificates,omitempty"`
	// Passthrough, on a TLS listener, forwards the TLS connection
	// untouched to the backend its route picks by SNI, which terminates
	// it; the listener has no Certificates then.
	Passthrough bool `json:"passthrough,omitempty"`
	// ClientValidation, if set on an HTTPS listener, asks clients for a
	// certificate and validates it (mutual TLS). The TLS handshake happens
	// before the request says which listener serves it, so validation is a
	// property of the port: every HTTPS listener on one address and port
	// must carry the same ClientValidation (or none). A listener that
	// differs from the first listener of its port is not served, and the
	// error names it.
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
	// RateLimits limit the requests the listener serves, whatever route
	// serves them. Every limit that covers a request (listener, route and
	// rule) must admit it.
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// RequestLimits bound the requests the listener serves; a route's or
	// rule's RequestLimits win over them field by field.
	RequestLimits RequestLimits `json:"requestLimits,omitzero"`
	// Policies name the policies whose settings the listener carries, for
	// people reading the configuration (for example
	// "TrafficPolicy default/limits"); the proxy does not interpret them.
	Policies []string `json:"policies,omitempty"`
}

// ClientValidationMode says which clients an HTTPS listener with
// [ClientValidation] accepts.
type ClientValidationMode uint8

// Client validation modes, as the Gateway API names them.
const (
	// AllowValidOnly accepts only clients that present a certificate
	// signed by one of the trusted authorities, for client authentication;
	// other handshakes fail. It is the zero value.
	AllowValidOnly ClientValidationMode = iota
	// AllowInsecureFallback asks clients for a certificate but accepts the
	// connection without one or with one that does not verify, leaving
	// authorization to the backend.
	AllowInsecureFallback
)

// String returns "AllowValidOnly" or "AllowInsecureFallback".
func (m ClientValidationMode) String() string {
	switch m {
	case AllowValidOnly:
		return "AllowValidOnly"
	case AllowInsecureFallback:
		return "AllowInsecureFallback"
	}
	return "ClientValidationMode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (m ClientValidationMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// ClientValidation is the client certificate validation of an HTTPS port
// (a Gateway's spec.tls.frontend).
type ClientValidation struct {
	// Name identifies the trusted authorities in logs and errors, e.g.
	// "namespace/configmap".
	Name string `json:"name,omitempty"`
	// CACertificates is a PEM bundle of the certificate authorities trusted
	// to sign client certificates. It is required.
	CACertificates []byte `json:"-"`
	// Mode says whether a valid certificate is required.
	Mode ClientValidationMode `json:"mode"`
}

// equal reports whether v and o validate clients alike; nil means no
// validation.
func (v *ClientValidation) equal(o *ClientValidation) bool {
	if v == nil || o == nil {
		return v == o
	}
	return v.Mode == o.Mode && bytes.Equal(v.CACertificates, o.CACertificates)
}

// Certificate is a PEM certificate chain and its private key.
type Certificate struct {
	// Name identifies the certificate in errors, e.g. "namespace/secret".
	Name string `json:"name"`
	// CertPEM is the PEM-encoded certificate chain, leaf first.
	CertPEM []byte `json:"-"`
	// KeyPEM is the PEM-encoded private key. It is never printed.
	KeyPEM []byte `json:"-"`
}

// Route is one HTTPRoute as it applies to a set of listeners.
type Route struct {
	// Namespace and Name identify the route in logs and metrics.
	Namespace string `json:"namespace"`
	// Name is the route's name within Namespace.
	Name string `json:"name"`
	// CreationTime breaks precedence ties between routes (oldest first).
	CreationTime time.Time `json:"creationTime"`
	// Listeners are the names of the listeners the route is attached to.
	Listeners []string `json:"listeners"`
	// Hostnames are the route's effective hostnames (already intersected
	// with the listeners' hostnames); empty means any host.
	Hostnames []string `json:"hostnames,omitempty"`
	// HostnameOrigins, when not empty, has one entry per Hostnames entry:
	// the route's own hostname each came from, "*" for a route without
	// hostnames, as router.Route.HostnameOrigins defines it. Routes with
	// the same effective hostname rank by it (the exact route before the
	// wildcard one). Empty means each hostname is its own origin.
	HostnameOrigins []string `json:"hostnameOrigins,omitempty"`
	// Rules are the route's rules in order.
	Rules []Rule `json:"rules"`
	// GRPC marks a route made from a GRPCRoute, whose rules match the
	// paths "/service/method" of gRPC calls; it shows in the configuration
	// (/debug/config) and changes nothing in serving. The proxy tells a
	// gRPC call by its Content-Type (application/grpc), whatever route
	// serves it: its own answers to one are gRPC answers, and it counts
	// it by gRPC status in rauta_grpc_responses_total.
	GRPC bool `json:"grpc,omitempty"`
	// RateLimits limit the requests of all the route's rules together.
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// RequestLimits bound the route's requests; a rule's RequestLimits win
	// over them, and they win over the listener's, field by field.
	RequestLimits RequestLimits `json:"requestLimits,omitzero"`
	// Policies name the policies whose settings the route carries; see
	// [Listener].Policies.
	Policies []string `json:"policies,omitempty"`
}

// Rule is one HTTPRoute rule.
type Rule struct {
	// Name is the optional rule name.
	Name string `json:"name,omitempty"`
	// Matches are OR'ed; none means PathPrefix "/".
	Matches []router.Match `json:"matches,omitempty"`
	// Filters apply to every request the rule matches, before its backend
	// is picked.
	Filters []filters.Spec `json:"filters,omitempty"`
	// Backends are the weighted backends of the rule. A rule without
	// backends answers 500 unless a filter (a redirect, say) answers.
	Backends []BackendRef `json:"backends,omitempty"`
	// Timeouts are the rule's request and backend request timeouts.
	Timeouts Timeouts `json:"timeouts,omitzero"`
	// Retry, if set, retries failed requests; see [RetryPolicy].
	Retry *RetryPolicy `json:"retry,omitempty"`
	// RateLimits limit the requests the rule serves.
	RateLimits []RateLimit `json:"rateLimits,omitempty"`
	// RequestLimits bound the rule's requests, winning over the route's
	// and the listener's field by field.
	RequestLimits RequestLimits `json:"requestLimits,omitzero"`
	// SessionPersistence, if set, pins a client's requests to the backend
	// reference and endpoint that served its first request.
	SessionPersistence *SessionPersistence `json:"sessionPersistence,omitempty"`
	// Policies name the policies whose settings the rule carries; see
	// [Listener].Policies.
	Policies []string `json:"policies,omitempty"`
}

// BackendRef is a weighted reference from a rule to a [Backend].
type BackendRef struct {
	// Backend is the Name of a Backend in the Config. An empty name marks a
	// reference that could not be resolved: its share of the traffic is
	// answered with 500, as the Gateway API requires.
	Backend string `json:"backend"`
	// Weight is the reference's share of the rule's traffic relative to
	// the other references. Zero receives no traffic.
	Weight uint32 `json:"weight"`
	// Filters apply only to requests forwarded to this reference.
	Filters []filters.Spec `json:"filters,omitempty"`
}

// Timeouts are the HTTPRoute rule timeouts of GEP-1742. Zero disables one.
type Timeouts struct {
	// Request bounds the whole exchange, from the request's arrival at the
	// gateway to the end of the response headers, retries included.
	Request time.Duration `json:"request,omitempty"`
	// BackendRequest bounds each attempt to a backend.
	BackendRequest time.Duration `json:"backendRequest,omitempty"`
}

// RetryPolicy retries requests that fail (GEP-1731). Connection failures
// that happen before any byte of the request was sent are retried for every
// method; response codes are retried only for idempotent methods or
// requests whose body can be replayed.
type RetryPolicy struct {
	// Attempts is the number of retries after the first attempt. Zero
	// disables every retry of the rule, the default ones included: a
	// connection failure before the request was sent is not tried on
	// another endpoint, and a failed idempotent request is not sent
	// again (a rule without a RetryPolicy gets those).
	Attempts int `json:"attempts"`
	// Codes are the response status codes that are retried (for example
	// 502, 503, 504). Connection failures are always retryable.
	Codes []int `json:"codes,omitempty"`
	// Backoff is the base delay before the first retry; each further retry
	// doubles it, with full jitter. Zero uses the backend's
	// [BackendRetry].Backoff, else 25ms.
	Backoff time.Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the delay. Zero uses the backend's
	// [BackendRetry].MaxBackoff, else 10 times Backoff.
	MaxBackoff time.Duration `json:"maxBackoff,omitempty"`
}

// RateLimit is a token-bucket limit on requests. Requests it refuses are
// answered 429 with Retry-After and the RateLimit and RateLimit-Policy
// fields of the IETF httpapi ratelimit-headers draft.
type RateLimit struct {
	// Name identifies the limit's budget: limits with the same Name share
	// their buckets, wherever they appear in the Config (a Gateway's limit
	// on each of its listeners is one budget), and the buckets outlive
	// configurations while the Name and the numbers stay the same. It
	// labels the rate-limit metrics and names the limit in the
	// RateLimit-Policy field, so it must be printable ASCII (at most 256
	// bytes); limits with one Name must have the same numbers. Empty gives
	// the limit a budget of its own, named by its place in the Config
	// (for example "route/ns/name/rules/0/rateLimits/0").
	Name string `json:"name,omitempty"`
	// Rate is the number of requests per second allowed in the long run,
	// for the whole gateway; each process admits its share (see
	// [Proxy.SetReplicas]).
	Rate float64 `json:"rate"`
	// Burst is the number of requests allowed at once.
	Burst int `json:"burst"`
	// Window is the period the limit is announced over in the
	// RateLimit-Policy field (quota Rate×Window per Window), rounded up
	// to whole seconds; zero means one second. It does not change what
	// the limit admits, and changing it keeps the buckets.
	Window time.Duration `json:"window,omitempty"`
	// Key selects the bucket: one for the limit when its Source is
	// KeyNone, otherwise one per client address, header, cookie or query
	// parameter value, with bounded memory. Requests without the key share
	// one bucket.
	Key upstream.HashKey `json:"key,omitzero"`
}

// RequestLimits bound what a client may send and how long it may take, for
// the requests of a listener, route or rule. A zero field sets nothing:
// the next less specific level, then [Limits], applies.
type RequestLimits struct {
	// MaxBodyBytes is the largest request body; a larger one is answered
	// 413 (before anything reaches a backend when Content-Length says
	// so). Zero sets no limit.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// ReadTimeout bounds receiving the request body, counted from the end
	// of the request head; a request still arriving then is answered 408
	// and its backend request aborted.
	ReadTimeout time.Duration `json:"readTimeout,omitempty"`
	// WriteTimeout bounds writing the response to the client, from its
	// first byte.
	WriteTimeout time.Duration `json:"writeTimeout,omitempty"`
}

// SessionType is where a session token travels.
type SessionType uint8

// Session types.
const (
	// SessionCookie issues the token in a Set-Cookie field and reads it
	// from the Cookie field.
	SessionCookie SessionType = iota
	// SessionHeader issues the token in a response header field and reads
	// it from the same request header field.
	SessionHeader
)

// String returns "Cookie" or "Header".
func (t SessionType) String() string {
	switch t {
	case SessionCookie:
		return "Cookie"
	case SessionHeader:
		return "Header"
	}
	return "SessionType(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (t SessionType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// SessionPersistence pins a client's requests to one endpoint (GEP-1619).
// The proxy issues a token, sealed so that only it can read it, naming the
// endpoint it picked; requests carrying a valid token go to that endpoint
// while it is ready, and are pinned anew when it is gone.
type SessionPersistence struct {
	// Type is where the token travels.
	Type SessionType `json:"type"`
	// Name is the cookie or header name; empty means "rauta-session".
	Name string `json:"name,omitempty"`
	// AbsoluteTimeout ends a session this long after it began; zero
	// means never.
	AbsoluteTimeout time.Duration `json:"absoluteTimeout,omitempty"`
	// IdleTimeout ends a session that carried no request this long; zero
	// means never.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// PermanentCookie gives the cookie a Max-Age of AbsoluteTimeout
	// instead of making it a session cookie.
	PermanentCookie bool `json:"permanentCookie,omitempty"`
	// CookiePath is the cookie's Path attribute (Type SessionCookie
	// only); empty derives it from the path of the rule's match that the
	// request took (its prefix, "/" when nothing narrower is safe).
	CookiePath string `json:"cookiePath,omitempty"`
}

// BackendProtocol is the protocol spoken to a backend's endpoints.
type BackendProtocol uint8

// Backend protocols.
const (
	// BackendHTTP1 is HTTP/1.1 over cleartext TCP; WebSocket and other
	// Upgrades are tunnelled over it.
	BackendHTTP1 BackendProtocol = iota
	// BackendH2C is HTTP/2 over cleartext TCP with prior knowledge
	// (appProtocol kubernetes.io/h2c).
	BackendH2C
	// BackendTLS is TLS to the backend (BackendTLSPolicy), negotiating h2
	// or HTTP/1.1 by ALPN.
	BackendTLS
)

// String returns "http1", "h2c" or "tls".
func (p BackendProtocol) String() string {
	switch p {
	case BackendHTTP1:
		return "http1"
	case BackendH2C:
		return "h2c"
	case BackendTLS:
		return "tls"
	}
	return "BackendProtocol(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (p BackendProtocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Backend is an upstream service: a set of endpoints spoken to with one
// protocol, and the policies that govern picking one. Its name,
// endpoints and endpoint policies are an [upstream.Spec]: the backend's
// state lives in an [upstream.Set] the proxy shares with its stream
// forwarding, so both kinds of traffic see one set of breakers, health
// and limits per backend.
type Backend struct {
	upstream.Spec
	// Protocol is the protocol spoken to the endpoints over HTTP.
	Protocol BackendProtocol `json:"protocol"`
	// TLS configures TLS to the endpoints when Protocol is BackendTLS.
	TLS *BackendTLSConfig `json:"tls,omitempty"`
	// Retry is the backoff and budget of retries to the backend.
	Retry BackendRetry `json:"retry,omitzero"`
	// SessionPersistence, if set, pins a client's requests to one of the
	// backend's endpoints. A rule's SessionPersistence wins over it.
	SessionPersistence *SessionPersistence `json:"sessionPersistence,omitempty"`
	// Policies name the policies whose settings the backend carries; see
	// [Listener].Policies.
	Policies []string `json:"policies,omitempty"`
}

// BackendRetry is how requests to a backend are retried, whatever rule
// retries them.
type BackendRetry struct {
	// Backoff is the base delay before the first retry when the rule's
	// [RetryPolicy] sets none.
	Backoff time.Duration `json:"backoff,omitempty"`
	// MaxBackoff caps the delay when the rule's RetryPolicy sets no cap.
	MaxBackoff time.Duration `json:"maxBackoff,omitempty"`
	// Budget, if set, replaces [Options].RetryBudget for the backend.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryBudget bounds retries to a backend so that they cannot multiply
// its load (Gateway API's BackendTrafficPolicy retryConstraint).
type RetryBudget struct {
	// Percent is the largest share of the backend's requests in Interval
	// that may be retries, in percent.
	Percent float64 `json:"percent"`
	// Interval is the period requests are counted over; zero means 10s.
	Interval time.Duration `json:"interval,omitempty"`
	// MinRetries is the number of retries per MinRetriesInterval always
	// allowed, whatever the budget says.
	MinRetries int `json:"minRetries,omitempty"`
	// MinRetriesInterval is the period of MinRetries; zero means 1s.
	MinRetriesInterval time.Duration `json:"minRetriesInterval,omitempty"`
}

// BackendTLSConfig is how the proxy verifies a TLS backend.
type BackendTLSConfig struct {
	// ServerName is sent as SNI and, unless SubjectAltNames are set, the
	// name the backend certificate must be valid for.
	ServerName string `json:"serverName"`
	// CACertificates is a PEM bundle of trusted certificate authorities.
	CACertificates []byte `json:"-"`
	// SystemRoots trusts the system's certificate authorities instead.
	SystemRoots bool `json:"systemRoots,omitempty"`
	// SubjectAltNames, when set, are the names (DNS names or URIs) of which
	// the backend certificate must present one.
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// ClientCertificate, if set, is presented to the backend when it asks
	// for a client certificate (a Gateway's spec.tls.backend). Changing it
	// gives the backend's endpoints new connection pools.
	ClientCertificate *Certificate `json:"clientCertificate,omitempty"`
}

// validate checks the parts of the Config that do not need compiling. It
// reports the first error found, naming the object and field.
func (c *Config) validateListeners() error {
	names := make(map[string]bool, len(c.Listeners))
	for i, l := range c.Listeners {
		if l.Name == "" {
			return fmt.Errorf("listeners[%d].name: must not be empty", i)
		}
		if names[l.Name] {
			return fmt.Errorf("listener %q: duplicate name", l.Name)
		}
		names[l.Name] = true
		if l.Port < 0 || l.Port > 65535 {
			return fmt.Errorf("listener %q: port %d out of range", l.Name, l.Port)
		}
		if l.Protocol > UDP {
			return fmt.Errorf("listener %q: unknown protocol %v", l.Name, l.Protocol)
		}
		if err := l.validateStream(); err != nil {
			return err
		}
		if err := l.validateUnbound(); err != nil {
			return err
		}
		if v := l.ClientValidation; v != nil {
			if l.Protocol != HTTPS {
				return fmt.Errorf("listener %q: clientValidation: only HTTPS listeners validate client certificates", l.Name)
			}
			if v.Mode != AllowValidOnly && v.Mode != AllowInsecureFallback {
				return fmt.Errorf("listener %q: clientValidation.mode: unknown value %v", l.Name, v.Mode)
			}
			if len(v.CACertificates) == 0 {
				return fmt.Errorf("listener %q: clientValidation.caCertificates: required", l.Name)
			}
		}
	}
	return nil
}
