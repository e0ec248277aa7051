// Package httpsem holds the rules of HTTP semantics (RFC 9110) that more
// than one rauta package applies, so that each is written once: pool
// decides with them which failed requests it may send again on a new
// connection, proxy which failed attempts it may retry.
package httpsem

import "net/http"

// Idempotent reports whether req may be sent again after a failure without
// changing its effect: its method is idempotent (RFC 9110 section 9.2.2;
// an empty method means GET) or it carries an Idempotency-Key (or
// X-Idempotency-Key) header, by which the client says the server
// deduplicates it. This is the rule of net/http's Transport.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}
