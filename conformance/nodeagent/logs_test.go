package nodeagent

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock returns times one second apart from t0.
func clock(t0 time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)-1) * time.Second) }
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// writeTestLog writes lines (each "stream message") to a log file.
func writeTestLog(t testing.TB, input string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.0.log")
	l, err := createLog(path, clock(t0))
	if err != nil {
		t.Fatal(err)
	}
	l.copyFrom("stdout", strings.NewReader(input))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLogFormat(t *testing.T) {
	long := strings.Repeat("x", maxLogLine+10)
	path := writeTestLog(t, "one\n\ntwo\n"+long+"\nlast-without-newline")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := []string{
		"2026-01-02T03:04:05.000000000Z stdout F one",
		"2026-01-02T03:04:06.000000000Z stdout F ",
		"2026-01-02T03:04:07.000000000Z stdout F two",
		"2026-01-02T03:04:08.000000000Z stdout P " + strings.Repeat("x", maxLogLine),
		"2026-01-02T03:04:09.000000000Z stdout F xxxxxxxxxx",
		"2026-01-02T03:04:10.000000000Z stdout F last-without-newline",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("log file (-want +got):\n%s", diff)
	}
	if _, err := parseRecord([]byte("garbage")); err == nil {
		t.Error("parseRecord accepted garbage")
	}
	if _, err := parseRecord([]byte("2026-01-02T03:04:05Z stdout X m")); err == nil {
		t.Error("parseRecord accepted tag X")
	}
}

func TestWriteRecords(t *testing.T) {
	data, err := os.ReadFile(writeTestLog(t, "a\nb\nc\nd\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    LogOptions
		want string
	}{
		{"all", LogOptions{TailLines: -1}, "a\nb\nc\nd\n"},
		{"since", LogOptions{TailLines: -1, Since: t0.Add(2 * time.Second)}, "c\nd\n"},
		{"tail", LogOptions{TailLines: 1}, "d\n"},
		{"tail0", LogOptions{TailLines: 0}, ""},
		{"tail-more", LogOptions{TailLines: 10}, "a\nb\nc\nd\n"},
		{"timestamps", LogOptions{TailLines: 1, Timestamps: true}, "2026-01-02T03:04:08.000000000Z d\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		n, err := writeRecords(&b, data, tt.o)
		if err != nil || n != len(data) {
			t.Errorf("%s: consumed %d of %d, err %v", tt.name, n, len(data), err)
		}
		if b.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, b.String(), tt.want)
		}
	}
	// A partial last line is left for the next read.
	n, _ := writeRecords(io.Discard, append(data, []byte("2026-01-02T03:04:09Z stdout F e")...), LogOptions{TailLines: -1})
	if n != len(data) {
		t.Errorf("consumed %d, want %d", n, len(data))
	}
	// Tail counts lines, not partial records.
	long := strings.Repeat("y", maxLogLine+1)
	pdata, _ := os.ReadFile(writeTestLog(t, "a\n"+long+"\n"))
	var b bytes.Buffer
	if _, err := writeRecords(&b, pdata, LogOptions{TailLines: 1}); err != nil || b.String() != long+"\n" {
		t.Errorf("tail over a partial record: %q (%v)", b.String(), err)
	}
}

func TestLogHandler(t *testing.T) {
	path := writeTestLog(t, "Echoing back request made to /mirror to client\nsecond\n")
	lookup := func(ns, pod, container string, previous bool) (string, func() bool, error) {
		if ns != "ns" || pod != "p" || container != "c" || previous {
			return "", nil, errNoLog
		}
		return path, func() bool { return true }, nil
	}
	srv := httptest.NewTLSServer(LogHandler(lookup))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/containerLogs/ns/p/c", 200, "Echoing back request made to /mirror to client\nsecond\n"},
		{"/containerLogs/ns/p/c?sinceTime=2026-01-02T03:04:06Z", 200, "second\n"},
		{"/containerLogs/ns/p/c?limitBytes=8", 200, "Echoing "},
		{"/containerLogs/ns/p/c?tailLines=1&timestamps=true", 200, "2026-01-02T03:04:06.000000000Z second\n"},
		{"/containerLogs/ns/p/c?follow=true", 200, "Echoing back request made to /mirror to client\nsecond\n"},
		{"/containerLogs/ns/p/other", 404, ""},
		{"/containerLogs/ns/p/c?previous=true", 404, ""},
		{"/containerLogs/ns/p/c?tailLines=-1", 400, ""},
		{"/containerLogs/ns/p/c?sinceTime=yesterday", 400, ""},
	}
	for _, tt := range tests {
		code, body := get(tt.path)
		if code != tt.code || (tt.code == 200 && body != tt.body) {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, code, body, tt.code, tt.body)
		}
	}
}

func TestStreamLogFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.0.log")
	l, err := createLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.write("stdout", "F", []byte("first"))
	var finished atomic.Bool
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- streamLog(context.Background(), pw, path, LogOptions{TailLines: -1, Follow: true}, finished.Load)
		pw.Close()
	}()
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(pr, buf, len("first\n"))
	if got := string(buf[:n]); got != "first\n" {
		t.Fatalf("first read %q", got)
	}
	l.write("stdout", "F", []byte("second"))
	n, _ = io.ReadAtLeast(pr, buf, len("second\n"))
	if got := string(buf[:n]); got != "second\n" {
		t.Fatalf("followed read %q", got)
	}
	finished.Store(true)
	rest, _ := io.ReadAll(pr)
	if len(rest) != 0 {
		t.Errorf("after the end: %q", rest)
	}
	if err := <-errc; err != nil {
		t.Errorf("streamLog: %v", err)
	}
}

// The API server reaches the agent over TLS without verifying it (no
// --kubelet-certificate-authority), but a client that does verify must find
// the certificate valid for the node's address and name.
func TestSelfSigned(t *testing.T) {
	cert, err := selfSigned("node", netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"127.0.0.1", "node"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.0.0.1"}); err == nil {
		t.Error("certificate valid for an address it does not name")
	}
}
