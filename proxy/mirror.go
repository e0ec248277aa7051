package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rauta/rauta/filters"
)

// newMirrorer returns the proxy's one Mirrorer, shared by every chain so
// that its limits hold process-wide.
func (p *Proxy) newMirrorer() *filters.Mirrorer {
	limit := p.opts.MirrorBodyLimit
	if limit == 0 {
		limit = 64 << 10
	}
	m, err := filters.NewMirrorer(filters.MirrorOptions{
		Sender:       filters.MirrorSenderFunc(p.sendMirror),
		MaxBodyBytes: limit,
		Logger:       p.log,
	})
	if err != nil {
		// Only a nil Sender fails, and the sender is set above.
		panic(err)
	}
	return m
}

var errNoMirrorEndpoint = errors.New("no healthy endpoint")

// sendMirror sends a mirrored request to an endpoint of a backend of the
// current snapshot.
func (p *Proxy) sendMirror(backend string, r *http.Request) (*http.Response, error) {
	bs := p.snap.Load().backends[backend]
	if bs == nil {
		p.metrics.mirrors.WithLabelValues(backend, "failed").Inc()
		return nil, fmt.Errorf("mirror backend %q is not configured", backend)
	}
	ep, ticket := bs.up.Table().Pick(0, false, nil)
	if ep == nil {
		p.metrics.mirrors.WithLabelValues(backend, "failed").Inc()
		return nil, fmt.Errorf("mirror backend %q: %w", backend, errNoMirrorEndpoint)
	}
	r.URL.Scheme = "http"
	if bs.up.TLS() != nil {
		r.URL.Scheme = "https"
	}
	r.URL.Host = ep.Addr()
	r.RequestURI = ""
	resp, err := ep.Transport().RoundTrip(r)
	if err != nil {
		ep.Done(ticket, false)
		p.metrics.mirrors.WithLabelValues(backend, "failed").Inc()
		return nil, err
	}
	ep.Done(ticket, resp.StatusCode < 500 || !ep.Count5xx())
	p.metrics.mirrors.WithLabelValues(backend, "sent").Inc()
	return resp, nil
}
