// Package maglev implements Maglev consistent hashing, as described in
// section 3.4 of "Maglev: A Fast and Reliable Software Network Load Balancer"
// (Eisenbud et al., NSDI 2016).
//
// [Build] turns a list of weighted, named backends into a lookup table of M
// entries (M prime, [DefaultSize] by default). [Table.Pick] maps the hash of a
// request key to a backend in constant time without allocating, so requests
// with the same key go to the same backend, and when a backend is added or
// removed most keys stay where they were.
//
// Removing one of N backends moves its own M/N entries and, because the fill
// cascades, some entries of other backends too. Measured at M = 65537 with
// equal weights, those extra moves are about 0.03·M/N for N = 10, 0.6·M/N for
// N = 100 and 6·M/N for N = 1000; the paper advises M > 100·N, and a larger M
// also brings the shares closer to the weights.
//
// A table depends only on the backends' names and weights and on M: the
// input order does not matter and no random seed is involved, so every
// process, on every machine, builds the same table from the same input and
// sends a key to the same backend. [HashString] and [HashBytes] hash request
// keys (a client address, a header value) with the same fixed algorithm,
// XXH64.
//
// A [Table] is immutable and safe for concurrent use. To change the backend
// set, build a new table and publish it, for example with an atomic pointer;
// picks in flight keep using the old one.
//
// Typical use:
//
//	t, err := maglev.Build(backends, maglev.Options{})
//	if err != nil {
//		return err
//	}
//	b := t.Backend(t.Pick(maglev.HashString(clientAddr)))
package maglev
