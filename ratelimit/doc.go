// Package ratelimit provides token-bucket rate limiters for a proxy's
// request path.
//
// A [Bucket] holds at most a burst of tokens and gains tokens at a steady
// rate; every allowed request takes one. When a request is refused, the
// limiter reports how long until a token will be available, which a proxy
// can send as a Retry-After header.
//
// A [Keyed] limiter keeps one bucket per key, such as a client address, a
// route or a header value, and bounds the number of keys it remembers, so
// that a flood of distinct keys cannot exhaust memory. [Keyed] documents
// exactly what happens at the bound.
//
// Both are safe for concurrent use and do not allocate when allowing a
// request; a [Keyed] limiter allocates only while it grows towards its key
// limit, and reuses forgotten keys' memory after that. Both are configured
// by a struct ([BucketOptions], [KeyedOptions]) and read the time from its
// Now, a func() time.Time that is time.Now unless set (as
// crypto/tls.Config.Time is), so that tests can move time by hand; the
// TakeN methods accept a time the caller has already read.
//
// Both can change their rate and burst while in use (SetLimit), each
// bucket keeping the tokens it holds up to the new burst, as a proxy does
// when it learns how many replicas share a limit; and both take back
// tokens handed out (Refund), as when a request one limiter allowed is
// refused by another.
//
// Internally a bucket is kept in the form of the generic cell rate
// algorithm: a single instant, the time at which the bucket will be full
// again. That makes a bucket one integer, updated with a compare-and-swap,
// and makes a bucket that is full indistinguishable from one never seen.
package ratelimit
