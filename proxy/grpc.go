package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// grpcCode is a gRPC status code (google.golang.org/grpc/codes).
type grpcCode uint8

// The gRPC status codes the gateway answers with or counts.
const (
	grpcOK                grpcCode = 0
	grpcCanceled          grpcCode = 1
	grpcUnknown           grpcCode = 2
	grpcDeadlineExceeded  grpcCode = 4
	grpcPermissionDenied  grpcCode = 7
	grpcResourceExhausted grpcCode = 8
	grpcUnimplemented     grpcCode = 12
	grpcInternal          grpcCode = 13
	grpcUnavailable       grpcCode = 14
	grpcUnauthenticated   grpcCode = 16
	numGRPCCodes                   = 17
)

var grpcCodeNames = [numGRPCCodes]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// String returns the code's canonical name, e.g. "UNAVAILABLE"; the
// metric label of rauta_grpc_responses_total.
func (c grpcCode) String() string {
	if c < numGRPCCodes {
		return grpcCodeNames[c]
	}
	return "UNKNOWN"
}

// isGRPC reports whether a request is a gRPC call: its Content-Type is
// application/grpc, alone or with a subtype ("+proto") or parameters.
// gRPC-Web (application/grpc-web) is not: its clients read HTTP answers.
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	if len(ct) != 1 {
		return false
	}
	rest, ok := strings.CutPrefix(ct[0], "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// grpcCodeFor is the gRPC status of an answer the gateway gives itself,
// by the reason for it; a reason without its own code falls back to the
// HTTP status as gRPC maps it (doc/http-grpc-status-mapping.md).
func grpcCodeFor(r reason, httpStatus int) grpcCode {
	switch r {
	case reasonNoRoute:
		return grpcUnimplemented
	case reasonInvalidBackend, reasonNoHealthyEndpoint, reasonUpstreamError, reasonMisdirected, reasonShutDown:
		// GRPCRoute: requests to an invalid backend get UNAVAILABLE.
		return grpcUnavailable
	case reasonRateLimited, reasonBodyTooLarge:
		return grpcResourceExhausted
	case reasonTimeout, reasonRequestTimeout:
		return grpcDeadlineExceeded
	case reasonBadRequest, reasonBadBody, reasonPanic:
		return grpcInternal
	}
	switch httpStatus {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

var grpcContentType = []string{"application/grpc"}

// failGRPC answers a gRPC request from the gateway itself: a
// trailers-only response (HTTP 200, no body) whose grpc-status says why.
func (x *requestState) failGRPC(w http.ResponseWriter, code grpcCode, msg string) {
	h := w.Header()
	h["Content-Type"] = grpcContentType
	delete(h, "Content-Length")
	h["Grpc-Status"] = []string{strconv.Itoa(int(code))}
	h["Grpc-Message"] = []string{grpcMessage(strings.TrimSpace(msg))}
	x.status, x.grpcStatus = http.StatusOK, code
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes a grpc-message value: bytes outside
// printable ASCII, and '%', are escaped.
func grpcMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// maxGRPCTimeout bounds a grpc-timeout: its value has at most 8 digits, and
// 99999999 hours would overflow a time.Duration.
const maxGRPCTimeout = time.Duration(1<<63 - 1)

// parseGRPCTimeout reads a grpc-timeout value: 1 to 8 digits and a unit
// (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64(maxGRPCTimeout/unit) {
		return maxGRPCTimeout, true
	}
	return time.Duration(n) * unit, true
}

// grpcTimeout returns the request timeout of a request: the rule's
// timeouts.request, shortened by the client's grpc-timeout on a gRPC call.
func grpcTimeout(r *http.Request, x *requestState, request time.Duration) time.Duration {
	if !x.grpc {
		return request
	}
	vs := r.Header["Grpc-Timeout"]
	if len(vs) != 1 {
		return request
	}
	d, ok := parseGRPCTimeout(vs[0])
	if !ok || request > 0 && request <= d {
		return request
	}
	return max(d, 1)
}

// noteGRPCStatus records the grpc-status a backend answered with, from the
// response's headers (a trailers-only response) or trailers.
func (x *requestState) noteGRPCStatus(header, trailer http.Header) {
	v := trailer["Grpc-Status"]
	if len(v) == 0 {
		v = header["Grpc-Status"]
	}
	if len(v) == 0 {
		x.grpcStatus = grpcUnknown
		return
	}
	n, err := strconv.ParseUint(v[0], 10, 8)
	if err != nil || n >= numGRPCCodes {
		x.grpcStatus = grpcUnknown
		return
	}
	x.grpcStatus = grpcCode(n)
}

// grpcPath splits a gRPC call's path "/service/method"; both are empty
// when the path is not of that form.
func grpcPath(p string) (service, method string) {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", ""
	}
	service, method, ok = strings.Cut(rest, "/")
	if !ok || service == "" || method == "" || strings.Contains(method, "/") {
		return "", ""
	}
	return service, method
}

// endGRPC ends a gRPC call whose backend response failed after its
// headers were sent: the trailers carry DEADLINE_EXCEEDED when the call's
// time ran out, UNAVAILABLE otherwise.
func (x *requestState) endGRPC(h http.Header, err error) {
	code, msg := grpcUnavailable, "upstream error"
	if errors.Is(err, context.DeadlineExceeded) || x.exchange != nil && errors.Is(x.exchange.Err(), context.DeadlineExceeded) {
		code, msg = grpcDeadlineExceeded, "upstream request timeout"
		x.reason = reasonTimeout
	}
	h[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(int(code))}
	h[http.TrailerPrefix+"Grpc-Message"] = []string{msg}
	x.grpcStatus = code
}

// observeGRPC counts a finished gRPC call by route, rule and status.
func (p *Proxy) observeGRPC(x *requestState) {
	rule := x.ruleName
	if rule == "" && x.route != "" {
		rule = strconv.Itoa(x.rule)
	}
	p.metrics.grpc.WithLabelValues(x.route, rule, x.grpcStatus.String()).Inc()
}
