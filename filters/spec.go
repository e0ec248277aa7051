package filters

import "strconv"

// Type identifies the kind of a filter, mirroring HTTPRouteFilter.Type.
type Type uint8

// The filter types of the Gateway API HTTPRoute. The zero value is invalid.
const (
	TypeUnset                  Type = iota // no type: rejected by Compile
	TypeRequestHeaderModifier              // RequestHeaderModifier
	TypeResponseHeaderModifier             // ResponseHeaderModifier
	TypeRequestRedirect                    // RequestRedirect
	TypeURLRewrite                         // URLRewrite
	TypeRequestMirror                      // RequestMirror
	TypeCORS                               // CORS
	TypeExtensionRef                       // ExtensionRef
)

// String returns the Gateway API name of the type, such as "RequestRedirect".
func (t Type) String() string {
	switch t {
	case TypeUnset:
		return "Unset"
	case TypeRequestHeaderModifier:
		return "RequestHeaderModifier"
	case TypeResponseHeaderModifier:
		return "ResponseHeaderModifier"
	case TypeRequestRedirect:
		return "RequestRedirect"
	case TypeURLRewrite:
		return "URLRewrite"
	case TypeRequestMirror:
		return "RequestMirror"
	case TypeCORS:
		return "CORS"
	case TypeExtensionRef:
		return "ExtensionRef"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// field returns the JSON name of the Spec field that configures filters of
// type t, as it appears in an HTTPRoute (used in error messages).
func (t Type) field() string {
	switch t {
	case TypeRequestHeaderModifier:
		return "requestHeaderModifier"
	case TypeResponseHeaderModifier:
		return "responseHeaderModifier"
	case TypeRequestRedirect:
		return "requestRedirect"
	case TypeURLRewrite:
		return "urlRewrite"
	case TypeRequestMirror:
		return "requestMirror"
	case TypeCORS:
		return "cors"
	case TypeExtensionRef:
		return "extensionRef"
	}
	return "type"
}

// Spec configures one filter. It mirrors the Gateway API HTTPRouteFilter: Type
// selects the filter and exactly the matching pointer field must be set.
type Spec struct {
	// Type selects the filter.
	Type Type

	// RequestHeaderModifier configures a TypeRequestHeaderModifier filter.
	RequestHeaderModifier *HeaderModifier
	// ResponseHeaderModifier configures a TypeResponseHeaderModifier filter.
	ResponseHeaderModifier *HeaderModifier
	// RequestRedirect configures a TypeRequestRedirect filter.
	RequestRedirect *Redirect
	// URLRewrite configures a TypeURLRewrite filter.
	URLRewrite *URLRewrite
	// RequestMirror configures a TypeRequestMirror filter.
	RequestMirror *Mirror
	// CORS configures a TypeCORS filter.
	CORS *CORS
	// ExtensionRef configures a TypeExtensionRef filter.
	ExtensionRef *ExtensionRef
}

// Header is an HTTP header name and value.
type Header struct {
	// Name is the header name; it is matched case-insensitively.
	Name string
	// Value is the header value.
	Value string
}

// HeaderModifier mirrors HTTPHeaderFilter: it sets, adds and removes headers of
// a request or a response. A header name may appear in only one action.
type HeaderModifier struct {
	// Set replaces all values of each named header with the given value.
	Set []Header
	// Add appends the given value to each named header, keeping the values
	// already present.
	Add []Header
	// Remove deletes every value of each named header.
	Remove []string
}

// Scheme is a URL scheme understood by redirects.
type Scheme uint8

// Schemes. SchemeUnset means "keep the scheme of the request".
const (
	SchemeUnset Scheme = iota // the scheme the request arrived with
	SchemeHTTP                // http
	SchemeHTTPS               // https
)

// String returns "http", "https" or "" for SchemeUnset.
func (s Scheme) String() string {
	switch s {
	case SchemeHTTP:
		return "http"
	case SchemeHTTPS:
		return "https"
	case SchemeUnset:
		return ""
	}
	return "Scheme(" + strconv.Itoa(int(s)) + ")"
}

// defaultPort returns the well-known port of the scheme.
func (s Scheme) defaultPort() uint16 {
	if s == SchemeHTTPS {
		return 443
	}
	return 80
}

// PathModifierType selects how a PathModifier changes the path.
type PathModifierType uint8

// Path modifier types. The zero value is invalid.
const (
	PathModifierUnset  PathModifierType = iota // no type: rejected by Compile
	ReplaceFullPath                            // replace the whole path
	ReplacePrefixMatch                         // replace the matched path prefix
)

// String returns the Gateway API name of the type.
func (t PathModifierType) String() string {
	switch t {
	case PathModifierUnset:
		return "Unset"
	case ReplaceFullPath:
		return "ReplaceFullPath"
	case ReplacePrefixMatch:
		return "ReplacePrefixMatch"
	}
	return "PathModifierType(" + strconv.Itoa(int(t)) + ")"
}

// PathModifier mirrors HTTPPathModifier. Paths are given in their escaped
// (on-the-wire) form, as in an HTTPRoute.
type PathModifier struct {
	// Type selects which of the two fields is used.
	Type PathModifierType
	// ReplaceFullPath is the new path when Type is ReplaceFullPath. The empty
	// string means "/".
	ReplaceFullPath string
	// ReplacePrefixMatch replaces the matched PathPrefix when Type is
	// ReplacePrefixMatch. The empty string removes the prefix. A trailing "/"
	// is ignored, so the rest of the path keeps its own slashes.
	ReplacePrefixMatch string
}

// Redirect mirrors HTTPRequestRedirectFilter. Zero fields keep the request's
// value, with the spec's rules for the port.
type Redirect struct {
	// Scheme of the Location; SchemeUnset keeps the request's scheme.
	Scheme Scheme
	// Hostname of the Location; "" keeps the hostname of the Host header.
	Hostname string
	// Port of the Location; 0 derives it: the scheme's well-known port when
	// Scheme is set, else the listener port. Ports 80 for http and 443 for
	// https are left out of the Location.
	Port uint16
	// Path modifies the path; nil keeps the request path.
	Path *PathModifier
	// StatusCode is 301, 302, 303, 307 or 308; 0 means 302.
	StatusCode int
}

// URLRewrite mirrors HTTPURLRewriteFilter: it changes the request before it is
// forwarded.
type URLRewrite struct {
	// Hostname replaces the Host header; "" keeps it.
	Hostname string
	// Path modifies the path; nil keeps it.
	Path *PathModifier
}

// Fraction is the share Numerator/Denominator of requests that are mirrored.
type Fraction struct {
	// Numerator is the number of requests mirrored per Denominator requests.
	Numerator uint32
	// Denominator defaults to 100 when zero.
	Denominator uint32
}

// Percent returns the Fraction p/100, the form of HTTPRequestMirrorFilter.Percent.
func Percent(p uint32) *Fraction { return &Fraction{Numerator: p, Denominator: 100} }

// Mirror mirrors HTTPRequestMirrorFilter.
type Mirror struct {
	// Backend identifies the mirror backend. It is opaque to this package and
	// is handed to the MirrorSender. It must not be empty.
	Backend string
	// Fraction is the share of requests to mirror; nil mirrors all of them.
	Fraction *Fraction
}

// CORS mirrors HTTPCORSFilter.
type CORS struct {
	// AllowOrigins lists the allowed origins, "scheme://host[:port]" where the
	// host may start with "*." (or be "*"), or the single entry "*".
	AllowOrigins []string
	// AllowMethods lists the allowed methods, or the single entry "*".
	AllowMethods []string
	// AllowHeaders lists the allowed request headers, or the single entry "*".
	AllowHeaders []string
	// ExposeHeaders lists the response headers exposed to scripts, or "*".
	ExposeHeaders []string
	// MaxAge is the preflight cache duration in seconds; 0 means 5.
	MaxAge int32
	// AllowCredentials allows credentialed requests.
	AllowCredentials bool
}

// ExtensionRef mirrors LocalObjectReference: it names a user-defined filter
// that a Registry resolves.
type ExtensionRef struct {
	// Group is the API group of the referent ("" for the core group).
	Group string
	// Kind is the kind of the referent. It must not be empty.
	Kind string
	// Name is the name of the referent.
	Name string
}

// MarshalText implements encoding.TextMarshaler, so configurations print
// the filter type by name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Scheme) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalText implements encoding.TextMarshaler.
func (t PathModifierType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
