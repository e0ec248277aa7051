package gatewayapi

import (
	"fmt"
	"time"

	"github.com/rauta/rauta/proxy"
	"golang.org/x/net/http/httpguts"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxSessionName is the longest sessionName the Gateway API allows.
const maxSessionName = 128

// sessionPersistence converts a Gateway API sessionPersistence (GEP-1619)
// found at field: an HTTPRoute rule's, an XBackendTrafficPolicy's or a
// BackendPolicy's, which adds idle, an idle timeout. It checks what the
// CRDs' schema and CEL rules check, since a file source has no API server
// to do it, and that the name can travel in a cookie or header field.
func sessionPersistence(sp *gatewayv1.SessionPersistence, idle *gatewayv1.Duration, field string) (*proxy.SessionPersistence, error) {
	out := &proxy.SessionPersistence{}
	switch t := deref(sp.Type); t {
	case "", gatewayv1.CookieBasedSessionPersistence:
		out.Type = proxy.SessionCookie
	case gatewayv1.HeaderBasedSessionPersistence:
		out.Type = proxy.SessionHeader
	default:
		return nil, fmt.Errorf("%s.type: %q is not Cookie or Header", field, t)
	}
	if n := sp.SessionName; n != nil {
		switch {
		case len(*n) > maxSessionName:
			return nil, fmt.Errorf("%s.sessionName: longer than %d characters", field, maxSessionName)
		case !httpguts.ValidHeaderFieldName(*n):
			// A cookie name is a token too (RFC 6265).
			return nil, fmt.Errorf("%s.sessionName: %q is not a valid %s name", field, *n, out.Type)
		}
		out.Name = *n
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
	if cc := sp.CookieConfig; cc != nil {
		if out.Type != proxy.SessionCookie {
			return nil, fmt.Errorf("%s.cookieConfig: only allowed with type Cookie", field)
		}
		switch lt := deref(cc.LifetimeType); lt {
		case "", gatewayv1.SessionCookieLifetimeType:
		case gatewayv1.PermanentCookieLifetimeType:
			if sp.AbsoluteTimeout == nil {
				return nil, fmt.Errorf("%s.absoluteTimeout: required when cookieConfig.lifetimeType is Permanent", field)
			}
			if out.AbsoluteTimeout < time.Second {
				// Max-Age counts whole seconds: a shorter cookie is gone
				// before it is used.
				return nil, fmt.Errorf("%s.absoluteTimeout: %v is under the 1s a Permanent cookie's Max-Age can express", field, out.AbsoluteTimeout)
			}
			out.PermanentCookie = true
		default:
			return nil, fmt.Errorf("%s.cookieConfig.lifetimeType: %q is not Permanent or Session", field, lt)
		}
	}
	return out, nil
}
