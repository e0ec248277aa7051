package filters

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by the ConfigErrors that Compile returns. A
// translator can map them to route status reasons with errors.Is.
var (
	// ErrInvalid reports a malformed value (a bad header name, a path that
	// is not a valid escaped path, a missing required field, ...).
	ErrInvalid = errors.New("invalid value")
	// ErrUnsupported reports a value outside the supported set (an unknown
	// filter type, status code, scheme or path modifier type). It
	// corresponds to the "UnsupportedValue" status reason.
	ErrUnsupported = errors.New("unsupported value")
	// ErrIncompatible reports filters that cannot be combined in one list
	// (RequestRedirect with URLRewrite, or a repeated filter that the spec
	// allows only once). It corresponds to the "IncompatibleFilters" reason.
	ErrIncompatible = errors.New("incompatible filters")
	// ErrUnknownExtension reports an ExtensionRef that the Registry cannot
	// resolve.
	ErrUnknownExtension = errors.New("unknown extension filter")
	// ErrNoMirrorer reports a RequestMirror filter compiled without
	// CompileOptions.Mirrorer.
	ErrNoMirrorer = errors.New("no Mirrorer configured for RequestMirror")
)

// ConfigError reports an invalid filter configuration. Index is the position
// of the filter in the list given to Compile and Field the path of the
// offending field inside it, spelled as in an HTTPRoute
// ("requestRedirect.statusCode").
type ConfigError struct {
	Index int
	Field string
	Err   error
}

// Error returns a message such as
// "filters[1].requestRedirect.statusCode: unsupported value: 305".
func (e *ConfigError) Error() string {
	return fmt.Sprintf("filters[%d].%s: %v", e.Index, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// configErr builds a ConfigError whose cause wraps kind with a detail message.
func configErr(index int, field string, kind error, format string, args ...any) *ConfigError {
	var err error
	if format == "" {
		err = kind
	} else {
		err = fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
	}
	return &ConfigError{Index: index, Field: field, Err: err}
}
