// Package breaker provides a circuit breaker for passive health checking:
// it watches the outcomes of real requests to a backend and stops sending
// requests to a backend that is failing, then probes it to see whether it
// has recovered.
//
// A [Breaker] moves between three states:
//
//	closed ──(error rate ≥ threshold, ≥ min requests)──▶ open
//	open ──(open timeout passed, next Allow)──▶ half-open
//	half-open ──(every probe succeeded)──▶ closed
//	half-open ──(a probe failed)──▶ open
//
// The error rate is measured over a sliding window divided into slices, so
// old outcomes age out a slice at a time. Every threshold, duration and
// count is set in a [Options] whose zero fields mean the documented
// defaults: a 10 s window of 10 slices, 50% failures, 20 requests at least,
// 30 s open, 1 probe.
//
// A proxy asks before each request and reports after it:
//
//	t, ok := b.Allow()
//	if !ok {
//		return errBackendUnavailable // fail fast: 503, or another backend
//	}
//	resp, err := send(req)
//	b.Done(t, err == nil && resp.StatusCode < 500)
//
// What counts as a failure is the caller's decision. A request that was
// never sent, for a reason that says nothing about the backend (a local
// connection limit), hands its ticket back with [Breaker.Cancel] instead.
// In the closed state
// Allow and Done do not allocate and take no lock, except once per slice of
// the window to advance it.
package breaker
