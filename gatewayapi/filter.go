package gatewayapi

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rauta/rauta/filters"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// convertFilters converts a rule's or a backendRef's filters. A
// RequestMirror whose backend cannot be resolved is left out and reported
// in refErr; a filter the proxy cannot apply is reported in invalid.
func (t *translator) convertFilters(r routeObject, in []gatewayv1.HTTPRouteFilter, field string, gws []*gatewayState, cc clientCert) (out []filters.Spec, refErr *refError, invalid *ruleError) {
	fail := func(format string, args ...any) {
		if invalid == nil {
			invalid = &ruleError{gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf(format, args...)}
		}
	}
	for i := range in {
		f := &in[i]
		ff := fmt.Sprintf("%s[%d]", field, i)
		var s filters.Spec
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			if f.RequestHeaderModifier == nil {
				fail("%s.requestHeaderModifier: required for type RequestHeaderModifier", ff)
				continue
			}
			s = filters.Spec{Type: filters.TypeRequestHeaderModifier, RequestHeaderModifier: convertHeaders(f.RequestHeaderModifier)}
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			if f.ResponseHeaderModifier == nil {
				fail("%s.responseHeaderModifier: required for type ResponseHeaderModifier", ff)
				continue
			}
			s = filters.Spec{Type: filters.TypeResponseHeaderModifier, ResponseHeaderModifier: convertHeaders(f.ResponseHeaderModifier)}
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			rd := f.RequestRedirect
			if rd == nil {
				fail("%s.requestRedirect: required for type RequestRedirect", ff)
				continue
			}
			out := &filters.Redirect{Hostname: string(deref(rd.Hostname)), StatusCode: deref(rd.StatusCode)}
			switch sc := deref(rd.Scheme); sc {
			case "":
			case "http":
				out.Scheme = filters.SchemeHTTP
			case "https":
				out.Scheme = filters.SchemeHTTPS
			default:
				fail("%s.requestRedirect.scheme: %q is not supported", ff, sc)
				continue
			}
			if p := deref(rd.Port); p != 0 {
				if p < 1 || p > 65535 {
					fail("%s.requestRedirect.port: %d is out of range", ff, p)
					continue
				}
				out.Port = uint16(p)
			}
			if rd.Path != nil {
				pm, err := convertPathModifier(rd.Path)
				if err != nil {
					fail("%s.requestRedirect.path: %v", ff, err)
					continue
				}
				out.Path = pm
			}
			s = filters.Spec{Type: filters.TypeRequestRedirect, RequestRedirect: out}
		case gatewayv1.HTTPRouteFilterURLRewrite:
			rw := f.URLRewrite
			if rw == nil {
				fail("%s.urlRewrite: required for type URLRewrite", ff)
				continue
			}
			out := &filters.URLRewrite{Hostname: string(deref(rw.Hostname))}
			if rw.Path != nil {
				pm, err := convertPathModifier(rw.Path)
				if err != nil {
					fail("%s.urlRewrite.path: %v", ff, err)
					continue
				}
				out.Path = pm
			}
			s = filters.Spec{Type: filters.TypeURLRewrite, URLRewrite: out}
		case gatewayv1.HTTPRouteFilterRequestMirror:
			m := f.RequestMirror
			if m == nil {
				fail("%s.requestMirror: required for type RequestMirror", ff)
				continue
			}
			out := &filters.Mirror{}
			switch {
			case m.Percent != nil && m.Fraction != nil:
				fail("%s.requestMirror: percent and fraction are mutually exclusive", ff)
				continue
			case m.Percent != nil:
				if *m.Percent < 0 || *m.Percent > 100 {
					fail("%s.requestMirror.percent: %d is out of range", ff, *m.Percent)
					continue
				}
				out.Fraction = filters.Percent(uint32(*m.Percent))
			case m.Fraction != nil:
				den := int32(100)
				if m.Fraction.Denominator != nil {
					den = *m.Fraction.Denominator
				}
				if m.Fraction.Numerator < 0 || den <= 0 || m.Fraction.Numerator > den {
					fail("%s.requestMirror.fraction: %d/%d is not a fraction between 0 and 1", ff, m.Fraction.Numerator, den)
					continue
				}
				out.Fraction = &filters.Fraction{Numerator: uint32(m.Fraction.Numerator), Denominator: uint32(den)}
			}
			name, e := t.resolveRouteBackend(r.kind, r.meta.Namespace, r.meta.Name, &m.BackendRef, gws, cc)
			if e != nil || name == "" {
				if e != nil && refErr == nil {
					refErr = &refError{e.reason, ff + ".requestMirror.backendRef: " + e.msg}
				}
				continue
			}
			out.Backend = name
			s = filters.Spec{Type: filters.TypeRequestMirror, RequestMirror: out}
		case gatewayv1.HTTPRouteFilterCORS:
			c := f.CORS
			if c == nil {
				fail("%s.cors: required for type CORS", ff)
				continue
			}
			out := &filters.CORS{MaxAge: c.MaxAge, AllowCredentials: deref(c.AllowCredentials)}
			for _, o := range c.AllowOrigins {
				out.AllowOrigins = append(out.AllowOrigins, string(o))
			}
			for _, m := range c.AllowMethods {
				out.AllowMethods = append(out.AllowMethods, string(m))
			}
			for _, h := range c.AllowHeaders {
				out.AllowHeaders = append(out.AllowHeaders, string(h))
			}
			for _, h := range c.ExposeHeaders {
				out.ExposeHeaders = append(out.ExposeHeaders, string(h))
			}
			s = filters.Spec{Type: filters.TypeCORS, CORS: out}
		case gatewayv1.HTTPRouteFilterExtensionRef:
			e := f.ExtensionRef
			if e == nil {
				fail("%s.extensionRef: required for type ExtensionRef", ff)
				continue
			}
			s = filters.Spec{Type: filters.TypeExtensionRef, ExtensionRef: &filters.ExtensionRef{Group: string(e.Group), Kind: string(e.Kind), Name: string(e.Name)}}
		default:
			fail("%s.type: %q is not supported", ff, f.Type)
			continue
		}
		out = append(out, s)
	}
	if invalid == nil {
		if err := validateFilters(out); err != nil {
			reason := gatewayv1.RouteReasonUnsupportedValue
			if errors.Is(err, filters.ErrIncompatible) {
				reason = gatewayv1.RouteReasonIncompatibleFilters
			}
			invalid = &ruleError{reason, fmt.Sprintf("%s: %v", field, err)}
		}
	}
	return out, refErr, invalid
}

// validateFilters compiles the filters with the filters package, leaving
// out those that need the proxy's runtime (mirrors and extensions), which
// are checked when the proxy compiles the Config.
func validateFilters(specs []filters.Spec) error {
	var check []filters.Spec
	for _, s := range specs {
		if s.Type == filters.TypeRequestMirror || s.Type == filters.TypeExtensionRef {
			continue
		}
		check = append(check, s)
	}
	if len(check) == 0 {
		return nil
	}
	_, err := filters.Compile(check, filters.CompileOptions{})
	return err
}

func convertHeaders(h *gatewayv1.HTTPHeaderFilter) *filters.HeaderModifier {
	out := &filters.HeaderModifier{Remove: append([]string(nil), h.Remove...)}
	for _, x := range h.Set {
		out.Set = append(out.Set, filters.Header{Name: string(x.Name), Value: x.Value})
	}
	for _, x := range h.Add {
		out.Add = append(out.Add, filters.Header{Name: string(x.Name), Value: x.Value})
	}
	return out
}

func convertPathModifier(p *gatewayv1.HTTPPathModifier) (*filters.PathModifier, error) {
	switch p.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath == nil {
			return nil, errors.New("replaceFullPath is required for type ReplaceFullPath")
		}
		return &filters.PathModifier{Type: filters.ReplaceFullPath, ReplaceFullPath: *p.ReplaceFullPath}, nil
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch == nil {
			return nil, errors.New("replacePrefixMatch is required for type ReplacePrefixMatch")
		}
		return &filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: *p.ReplacePrefixMatch}, nil
	}
	return nil, fmt.Errorf("type %q is not supported", p.Type)
}

// usesPrefixReplace reports whether a filter list replaces the matched
// path prefix, which needs PathPrefix matches.
func usesPrefixReplace(specs []filters.Spec) bool {
	for _, s := range specs {
		var p *filters.PathModifier
		switch {
		case s.RequestRedirect != nil:
			p = s.RequestRedirect.Path
		case s.URLRewrite != nil:
			p = s.URLRewrite.Path
		}
		if p != nil && p.Type == filters.ReplacePrefixMatch {
			return true
		}
	}
	return false
}

// parseDuration parses a Gateway API duration (GEP-2257): one to four
// groups of one to five digits followed by a unit, h, m, s or ms, such as
// "1h30m" or "500ms".
func parseDuration(s string) (time.Duration, error) {
	if !validDuration(s) {
		return 0, fmt.Errorf("%q is not a Gateway API duration", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	return d, nil
}

// validDuration reports whether s matches ^([0-9]{1,5}(h|m|s|ms)){1,4}$.
func validDuration(s string) bool {
	groups := 0
	for len(s) > 0 {
		digits := 0
		for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
			digits++
		}
		if digits == 0 || digits > 5 {
			return false
		}
		s = s[digits:]
		switch {
		case strings.HasPrefix(s, "ms"):
			s = s[2:]
		case strings.HasPrefix(s, "h"), strings.HasPrefix(s, "m"), strings.HasPrefix(s, "s"):
			s = s[1:]
		default:
			return false
		}
		groups++
	}
	return groups >= 1 && groups <= 4
}
