package httpsem

import (
	"fmt"
	"net/http"
	"testing"
)

func TestIdempotent(t *testing.T) {
	tests := []struct {
		method string
		header http.Header
		want   bool
	}{
		{"", nil, true},
		{http.MethodGet, nil, true},
		{http.MethodHead, nil, true},
		{http.MethodOptions, nil, true},
		{http.MethodTrace, nil, true},
		{http.MethodPut, nil, true},
		{http.MethodDelete, nil, true},
		{http.MethodPost, nil, false},
		{http.MethodPatch, nil, false},
		{http.MethodConnect, nil, false},
		{"get", nil, false}, // methods are case-sensitive
		{"PURGE", nil, false},
		{http.MethodPost, http.Header{"Idempotency-Key": {"k1"}}, true},
		{http.MethodPatch, http.Header{"Idempotency-Key": {""}}, true},
		{http.MethodPost, http.Header{"X-Idempotency-Key": {"k1"}}, true},
		{http.MethodPost, http.Header{"Idempotency-Key": nil}, true},
		{http.MethodPost, http.Header{"Idempotency-Keys": {"k1"}}, false},
		{http.MethodPost, http.Header{"idempotency-key": {"k1"}}, false}, // not canonical: not a header net/http would send
		{http.MethodConnect, http.Header{"Idempotency-Key": {"k1"}}, true},
	}
	for _, tt := range tests {
		req := &http.Request{Method: tt.method, Header: tt.header}
		if got := Idempotent(req); got != tt.want {
			t.Errorf("Idempotent(%q, %v) = %v, want %v", tt.method, tt.header, got, tt.want)
		}
	}
}

func ExampleIdempotent() {
	post, _ := http.NewRequest(http.MethodPost, "http://backend.example/orders", nil)
	fmt.Println(Idempotent(post))
	post.Header.Set("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
	fmt.Println(Idempotent(post))
	// Output:
	// false
	// true
}
