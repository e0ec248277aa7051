package filters

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// Filter is a user-defined filter, plugged into a Chain through an
// ExtensionRef and a Registry. Implementations must be safe for concurrent
// use: one Filter serves every request of the rules that reference it.
type Filter interface {
	// Request is called, in the filter's position in the chain, with the
	// request about to be forwarded; the filter may change r in place. If
	// it writes a response to w itself (to reject the request, say) it
	// returns true: the chain stops and the request is not forwarded.
	Request(w http.ResponseWriter, r *http.Request, info RequestInfo) (handled bool)
	// Response is called with the response headers before they are
	// written, for requests whose Request hook ran and returned false. r
	// is the request as the chain left it.
	Response(h http.Header, r *http.Request)
}

// Factory builds the Filter for one ExtensionRef. It is called by Compile,
// once per reference, and may use ref.Name to look up its own
// configuration. An error makes Compile fail.
type Factory func(ref ExtensionRef) (Filter, error)

// groupKind keys a Registry.
type groupKind struct{ group, kind string }

// Registry maps the (group, kind) of ExtensionRefs to the factories of
// user-defined filters. The zero value is an empty registry ready to use;
// it is safe for concurrent use. There is no global registry: build one and
// pass it in CompileOptions.
type Registry struct {
	mu sync.RWMutex
	m  map[groupKind]Factory
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds the factory for ExtensionRefs with the given group and
// kind. group may be "" (the core group); kind must not be empty. It fails
// if the pair is already registered or f is nil.
func (reg *Registry) Register(group, kind string, f Factory) error {
	if kind == "" {
		return errors.New("filters: Register: kind must not be empty")
	}
	if f == nil {
		return fmt.Errorf("filters: Register %s/%s: nil factory", group, kind)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	key := groupKind{group, kind}
	if _, dup := reg.m[key]; dup {
		return fmt.Errorf("filters: Register %s/%s: already registered", group, kind)
	}
	if reg.m == nil {
		reg.m = make(map[groupKind]Factory)
	}
	reg.m[key] = f
	return nil
}

// resolve builds the Filter for ref; index is the filter's position for
// error messages. reg may be nil.
func (reg *Registry) resolve(index int, ref ExtensionRef) (Filter, error) {
	const f = "extensionRef"
	if ref.Kind == "" {
		return nil, configErr(index, f+".kind", ErrInvalid, "must not be empty")
	}
	if ref.Name == "" {
		return nil, configErr(index, f+".name", ErrInvalid, "must not be empty")
	}
	var factory Factory
	if reg != nil {
		reg.mu.RLock()
		factory = reg.m[groupKind{ref.Group, ref.Kind}]
		reg.mu.RUnlock()
	}
	if factory == nil {
		return nil, configErr(index, f, ErrUnknownExtension, "no filter registered for group %q kind %q (name %q)", ref.Group, ref.Kind, ref.Name)
	}
	flt, err := factory(ref)
	if err != nil {
		return nil, &ConfigError{Index: index, Field: f, Err: fmt.Errorf("%s %q: %w", ref.Kind, ref.Name, err)}
	}
	if flt == nil {
		return nil, configErr(index, f, ErrInvalid, "factory for %s %q returned a nil Filter", ref.Kind, ref.Name)
	}
	return flt, nil
}
