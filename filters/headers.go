package filters

import (
	"fmt"
	"net/http"
)

// headerKV is a header action with its key canonicalized at compile time.
// vals is a one-element slice with len == cap, shared by every request the
// action applies to: installing it costs no allocation, and an append by
// anyone else copies it instead of writing into it.
type headerKV struct {
	key  string
	val  string
	vals []string
}

// headerOps is a compiled HeaderModifier.
type headerOps struct {
	set    []headerKV
	add    []headerKV
	remove []string
	// host is the value of a "Host" set action of a request modifier; Go
	// keeps the Host header in r.Host, not in r.Header.
	host    string
	setHost bool
}

// compileHeaders validates m and precomputes its canonical keys. request is
// true for a RequestHeaderModifier, where "Host" is special.
func compileHeaders(i int, field string, m *HeaderModifier, request bool) (*headerOps, error) {
	ops := &headerOps{}
	seen := map[string]string{} // canonical key -> field path of its action
	check := func(path, name string) (string, error) {
		if !validToken(name) {
			return "", configErr(i, path, ErrInvalid, "header name %q is not a valid token", name)
		}
		key := http.CanonicalHeaderKey(name)
		if prev, dup := seen[key]; dup {
			return "", configErr(i, path, ErrInvalid, "header %q already has an action at %s; only one action per header name is allowed", name, prev)
		}
		seen[key] = path
		return key, nil
	}
	for j, h := range m.Set {
		path := fmt.Sprintf("%s.set[%d]", field, j)
		key, err := check(path+".name", h.Name)
		if err != nil {
			return nil, err
		}
		if !validHeaderValue(h.Value) {
			return nil, configErr(i, path+".value", ErrInvalid, "header value %q contains control characters", h.Value)
		}
		if request && key == "Host" {
			if !validHostValue(h.Value) {
				return nil, configErr(i, path+".value", ErrInvalid, "%q is not a valid host[:port]", h.Value)
			}
			ops.host, ops.setHost = h.Value, true
			continue
		}
		ops.set = append(ops.set, headerKV{key: key, val: h.Value, vals: []string{h.Value}})
	}
	for j, h := range m.Add {
		path := fmt.Sprintf("%s.add[%d]", field, j)
		key, err := check(path+".name", h.Name)
		if err != nil {
			return nil, err
		}
		if !validHeaderValue(h.Value) {
			return nil, configErr(i, path+".value", ErrInvalid, "header value %q contains control characters", h.Value)
		}
		if request && key == "Host" {
			return nil, configErr(i, path+".name", ErrUnsupported, "the Host header can only be set, not added")
		}
		ops.add = append(ops.add, headerKV{key: key, val: h.Value, vals: []string{h.Value}})
	}
	for j, name := range m.Remove {
		path := fmt.Sprintf("%s.remove[%d]", field, j)
		key, err := check(path, name)
		if err != nil {
			return nil, err
		}
		if request && key == "Host" {
			return nil, configErr(i, path, ErrUnsupported, "the Host header can only be set, not removed")
		}
		ops.remove = append(ops.remove, key)
	}
	return ops, nil
}

// apply performs the actions on h: set replaces every value, add appends
// one value to those present, remove deletes the header. Keys in h are
// expected in canonical form, as net/http produces them.
func (o *headerOps) apply(h http.Header) {
	for i := range o.set {
		kv := &o.set[i]
		h[kv.key] = kv.vals
	}
	for i := range o.add {
		kv := &o.add[i]
		if old := h[kv.key]; len(old) > 0 {
			// The three-index slice makes append copy rather than write
			// into spare capacity that another header might share.
			h[kv.key] = append(old[:len(old):len(old)], kv.val)
		} else {
			h[kv.key] = kv.vals
		}
	}
	for _, key := range o.remove {
		delete(h, key)
	}
}

// applyRequest performs the actions on a request, including a Host set.
func (o *headerOps) applyRequest(r *http.Request) {
	if r.Header == nil {
		r.Header = make(http.Header, len(o.set)+len(o.add))
	}
	o.apply(r.Header)
	if o.setHost {
		r.Host = o.host
	}
}
