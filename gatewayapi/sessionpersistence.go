package gatewayapi

import (
	"fmt"
	"time"

	"github.com/rauta/rauta/proxy"
	"golang.org/x/net/http/httpguts"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxSessionName is the longest cookie or header name the Gateway API
// allows for a session (CookieName, HeaderName).
const maxSessionName = 256

// maxCookiePath is the longest cookie.path the Gateway API allows.
const maxCookiePath = 1024

// sessionPersistence converts a Gateway API sessionPersistence (GEP-1619)
// found at field: an HTTPRoute rule's, an XBackendTrafficPolicy's or a
// BackendPolicy's, which adds idle, an idle timeout. It checks what the
// CRDs' schema and CEL rules check, since a file source has no API server
// to do it, and that the name can travel in a cookie or header field.
// The cookie's Path is cookie.path, "/" when unset (Gateway API v1.7).
func sessionPersistence(sp *gatewayv1.SessionPersistence, idle *gatewayv1.Duration, field string) (*proxy.SessionPersistence, error) {
	out := &proxy.SessionPersistence{}
	switch t := deref(sp.Type); t {
	case "", gatewayv1.CookieBasedSessionPersistence:
		out.Type = proxy.SessionCookie
		out.CookiePath = "/"
	case gatewayv1.HeaderBasedSessionPersistence:
		out.Type = proxy.SessionHeader
	default:
		return nil, fmt.Errorf("%s.type: %q is not Cookie or Header", field, t)
	}
	switch {
	case sp.Cookie != nil && out.Type != proxy.SessionCookie:
		return nil, fmt.Errorf("%s.cookie: only allowed with type Cookie", field)
	case sp.Header != nil && out.Type != proxy.SessionHeader:
		return nil, fmt.Errorf("%s.header: only allowed with type Header", field)
	case sp.Header == nil && out.Type == proxy.SessionHeader:
		return nil, fmt.Errorf("%s.header: required for type Header", field)
	case sp.Cookie == nil && out.Type == proxy.SessionCookie:
		// The CRD defaults type to Cookie, then requires cookie.
		return nil, fmt.Errorf("%s.cookie: required for type Cookie (cookie: {} takes the defaults)", field)
	}
	var err error
	if sp.AbsoluteTimeout != nil {
		if out.AbsoluteTimeout, err = parseDuration(string(*sp.AbsoluteTimeout)); err != nil {
			return nil, fmt.Errorf("%s.absoluteTimeout: %w", field, err)
		}
	}
	if idle != nil {
		if out.IdleTimeout, err = parseDuration(string(*idle)); err != nil {
			return nil, fmt.Errorf("%s.idleTimeout: %w", field, err)
		}
	}
	if h := sp.Header; h != nil {
		if err := sessionName(string(h.Name), field+".header.name"); err != nil {
			return nil, err
		}
		out.Name = string(h.Name)
	}
	if cc := sp.Cookie; cc != nil {
		if cc.Name != nil {
			if err := sessionName(string(*cc.Name), field+".cookie.name"); err != nil {
				return nil, err
			}
			out.Name = string(*cc.Name)
		}
		if p := cc.Path; p != nil {
			if len(*p) > maxCookiePath {
				return nil, fmt.Errorf("%s.cookie.path: longer than %d characters", field, maxCookiePath)
			}
			if !proxy.ValidCookiePath(*p) {
				return nil, fmt.Errorf("%s.cookie.path: %q is not a cookie Path: it must start with '/' and hold no control character, non-ASCII byte or ';'", field, *p)
			}
			out.CookiePath = *p
		}
		switch lt := deref(cc.LifetimeType); lt {
		case "", gatewayv1.SessionCookieLifetimeType:
		case gatewayv1.PermanentCookieLifetimeType:
			if sp.AbsoluteTimeout == nil {
				return nil, fmt.Errorf("%s.absoluteTimeout: required when cookie.lifetimeType is Permanent", field)
			}
			if out.AbsoluteTimeout < time.Second {
				// Max-Age counts whole seconds: a shorter cookie is gone
				// before it is used.
				return nil, fmt.Errorf("%s.absoluteTimeout: %v is under the 1s a Permanent cookie's Max-Age can express", field, out.AbsoluteTimeout)
			}
			out.PermanentCookie = true
		default:
			return nil, fmt.Errorf("%s.cookie.lifetimeType: %q is not Permanent or Session", field, lt)
		}
	}
	return out, nil
}

// sessionName checks a session's cookie or header name at field.
func sessionName(n, field string) error {
	switch {
	case n == "":
		return fmt.Errorf("%s: must not be empty", field)
	case len(n) > maxSessionName:
		return fmt.Errorf("%s: longer than %d characters", field, maxSessionName)
	case !httpguts.ValidHeaderFieldName(n):
		// A cookie name is a token too (RFC 6265).
		return fmt.Errorf("%s: %q is not a token", field, n)
	}
	return nil
}
