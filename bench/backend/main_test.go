package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		method string
		body   string
	}{
		{name: "default size", size: 64, method: http.MethodGet},
		{name: "empty body", size: 0, method: http.MethodGet},
		{name: "post with body", size: 10, method: http.MethodPost, body: "hello"},
		{name: "one byte", size: 1, method: http.MethodHead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newHandler(tt.size)
			if err != nil {
				t.Fatalf("newHandler(%d): %v", tt.size, err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, "/any/path", strings.NewReader(tt.body))
			h.ServeHTTP(rec, req)

			type result struct {
				Status        int
				ContentLength string
				BodyLen       int
			}
			got := result{rec.Code, rec.Header().Get("Content-Length"), rec.Body.Len()}
			want := result{http.StatusOK, strconv.Itoa(tt.size), tt.size}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
			if n, _ := io.Copy(io.Discard, req.Body); n != 0 {
				t.Errorf("request body not drained: %d bytes left", n)
			}
		})
	}
}

func TestHandlerNegativeSize(t *testing.T) {
	if _, err := newHandler(-1); err == nil {
		t.Fatal("newHandler(-1): want an error, got nil")
	}
}

func BenchmarkHandler(b *testing.B) {
	h, err := newHandler(64)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
