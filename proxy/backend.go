package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/pool"
	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

// backendState is what the HTTP path keeps of a backend beside its
// shared [upstream.Backend] state: the retry budget and counters, and its
// labelled metrics. A new one is made when the upstream state is
// replaced (its transport changed); otherwise it is found again by name
// on every Apply.
type backendState struct {
	name string
	up   *upstream.Backend
	spec *Backend // the configuration in effect; replaced under applyMu

	active   atomic.Int64 // requests in flight, for the retry budget
	retrying atomic.Int64 // retries in flight
	// retry holds the backend's retry backoff and budget (Backend.Retry),
	// read by requests; replaced under applyMu.
	retry atomic.Pointer[retrySettings]
	// lbPolicy is the policy label of the rauta_backend_lb_policy series
	// in effect; guarded by applyMu.
	lbPolicy string

	// labelled metrics, resolved once
	connectErrors interface{ Inc() }
	upstreamTime  interface{ Observe(float64) }
}

// poolProtocol maps a backend protocol onto the pool's.
func poolProtocol(p BackendProtocol) pool.Protocol {
	switch p {
	case BackendH2C:
		return pool.H2C
	case BackendTLS:
		return pool.H2
	}
	return pool.HTTP1
}

// backendTLS builds the client TLS configuration of a TLS backend.
func backendTLS(b *Backend) (*tls.Config, error) {
	if b.TLS == nil {
		return nil, errors.New("tls: required for protocol tls")
	}
	opts := tlsconfig.BackendOptions{
		ServerName:     b.TLS.ServerName,
		CACertificates: b.TLS.CACertificates,
		SystemRoots:    b.TLS.SystemRoots,
	}
	if c := b.TLS.ClientCertificate; c != nil {
		kp, err := tlsconfig.LoadKeyPair(c.CertPEM, c.KeyPEM, tlsconfig.KeyPairOptions{})
		if err != nil {
			return nil, fmt.Errorf("tls.clientCertificate %q: %w", c.Name, err)
		}
		opts.ClientCertificate = kp
	}
	for _, s := range b.TLS.SubjectAltNames {
		if strings.Contains(s, "://") {
			opts.SubjectAltNames = append(opts.SubjectAltNames, tlsconfig.SubjectAltName{Type: tlsconfig.SANURI, Value: s})
		} else {
			opts.SubjectAltNames = append(opts.SubjectAltNames, tlsconfig.SubjectAltName{Type: tlsconfig.SANHostname, Value: s})
		}
	}
	return tlsconfig.NewBackendConfig(opts)
}

// specKey identifies what endpoint transports depend on.
func specKeyOf(b *Backend) string {
	if b.TLS == nil {
		return b.Protocol.String()
	}
	// The client certificate counts by a digest of its PEM: a renewed
	// certificate under the same name needs new connections.
	var client [sha256.Size]byte
	if c := b.TLS.ClientCertificate; c != nil {
		h := sha256.New()
		h.Write(c.CertPEM)
		h.Write([]byte{0})
		h.Write(c.KeyPEM)
		h.Sum(client[:0])
	}
	return fmt.Sprintf("%v|%s|%x|%v|%q|%x", b.Protocol, b.TLS.ServerName, b.TLS.CACertificates, b.TLS.SystemRoots, b.TLS.SubjectAltNames, client)
}

// transport returns the upstream transport of a backend: its protocol,
// and its TLS configuration built only when the key says it changed.
func transport(b *Backend) upstream.Transport {
	t := upstream.Transport{Key: specKeyOf(b), Protocol: poolProtocol(b.Protocol)}
	if b.Protocol == BackendTLS {
		t.TLS = func() (*tls.Config, error) { return backendTLS(b) }
	}
	return t
}

// syncBackends brings the shared upstream set and p.backends in line with
// the configured backends and returns the map for the new snapshot.
// Backends that fail to configure are reported and left out, so
// references to them answer 500.
func (p *Proxy) syncBackends(specs []Backend, errs map[string]error) map[string]*backendState {
	byName := make(map[string]*Backend, len(specs))
	ups := make([]upstream.Spec, 0, len(specs))
	for i := range specs {
		b := &specs[i]
		if b.Name == "" {
			errs[fmt.Sprintf("backends[%d]", i)] = errors.New("name: must not be empty")
			continue
		}
		if _, dup := byName[b.Name]; dup {
			errs[b.Name] = errors.New("duplicate name")
			continue
		}
		byName[b.Name] = b
		if err := validateBackend(b); err != nil {
			errs[b.Name] = err
			continue
		}
		ups = append(ups, b.Spec)
	}
	upb, uerrs := p.upstreams.Sync(ups, func(s *upstream.Spec) upstream.Transport { return transport(byName[s.Name]) })
	for k, err := range uerrs {
		errs[k] = err
	}
	out := make(map[string]*backendState, len(upb))
	for name, ub := range upb {
		b := byName[name]
		bs := p.backends[name]
		if bs == nil || bs.up != ub {
			nbs := &backendState{
				name:          name,
				up:            ub,
				connectErrors: p.metrics.connectErrors.WithLabelValues(name),
				upstreamTime:  p.metrics.upstreamDuration.WithLabelValues(name),
			}
			if bs != nil {
				nbs.lbPolicy = bs.lbPolicy
				nbs.retry.Store(bs.retry.Load())
			}
			bs = nbs
		}
		bs.spec = b
		bs.retry.Store(newRetrySettings(b.Retry, bs.retry.Load()))
		if policy := b.LoadBalancer.Policy.String(); policy != bs.lbPolicy {
			if bs.lbPolicy != "" {
				p.metrics.lbPolicy.DeleteLabelValues(name, bs.lbPolicy)
			}
			bs.lbPolicy = policy
		}
		p.metrics.lbPolicy.WithLabelValues(name, bs.lbPolicy).Set(1)
		out[name] = bs
	}
	for name, bs := range p.backends {
		if out[name] == nil {
			p.metrics.lbPolicy.DeleteLabelValues(name, bs.lbPolicy)
		}
	}
	p.backends = out
	return out
}

// UpdateEndpoints replaces the endpoints of one backend without recompiling
// routes: the fast path for endpoint churn (an EndpointSlice change). The
// state of endpoints that stay is kept.
func (p *Proxy) UpdateEndpoints(backend string, eps []upstream.Endpoint) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.backends[backend] == nil {
		return fmt.Errorf("backend %q is not configured", backend)
	}
	return p.upstreams.UpdateEndpoints(backend, eps)
}

// validateBackend checks the parts of a backend the upstream set does not
// (its retries and session persistence). It reports the first error
// found, naming the field; [ApplyError] names the backend.
func validateBackend(b *Backend) error {
	if sp := b.SessionPersistence; sp != nil {
		if err := validateSession(sp); err != nil {
			return fmt.Errorf("sessionPersistence: %w", err)
		}
	}
	if err := b.Retry.validate(); err != nil {
		return fmt.Errorf("retry.%w", err)
	}
	return nil
}

// validate checks a backend's retry settings. Errors start with the field
// name.
func (r *BackendRetry) validate() error {
	if err := validateBackoff(r.Backoff, r.MaxBackoff); err != nil {
		return err
	}
	if bu := r.Budget; bu != nil {
		switch {
		case math.IsNaN(bu.Percent) || bu.Percent < 0 || bu.Percent > 100:
			return fmt.Errorf("budget.percent: %v must be between 0 and 100", bu.Percent)
		case bu.Interval < 0:
			return errors.New("budget.interval: must not be negative")
		case bu.MinRetries < 0:
			return errors.New("budget.minRetries: must not be negative")
		case bu.MinRetriesInterval < 0:
			return errors.New("budget.minRetriesInterval: must not be negative")
		}
	}
	return nil
}

// newUpstreams returns the proxy's upstream set: its members' transports
// come from the proxy's pool, and their breaker and health transitions
// feed the proxy's metrics.
func (p *Proxy) newUpstreams() *upstream.Set {
	m := p.metrics
	return upstream.NewSet(upstream.Options{
		Pool:   p.pools,
		Logger: p.log,
		Hooks: upstream.Hooks{
			Breaker: func(backend, addr string, _, to breaker.State) {
				m.breakerState.WithLabelValues(backend, addr).Set(float64(to))
				m.breakerTransitions.WithLabelValues(backend, to.String()).Inc()
			},
			Health: func(backend, addr string, healthy, changed bool) {
				m.endpointHealthy.WithLabelValues(backend, addr).Set(b2f(healthy))
				if !changed {
					return
				}
				result := "unhealthy"
				if healthy {
					result = "healthy"
				}
				m.healthTransitions.WithLabelValues(backend, result).Inc()
			},
			Removed: func(backend, addr string) {
				m.breakerState.DeleteLabelValues(backend, addr)
				m.endpointHealthy.DeleteLabelValues(backend, addr)
			},
		},
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
