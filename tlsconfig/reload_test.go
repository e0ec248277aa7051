package tlsconfig

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writePair(t *testing.T, dir, name string, c issued) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	writeFile(t, certFile, c.certPEM)
	writeFile(t, keyFile, c.keyPEM)
	return certFile, keyFile
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger used from Run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served returns the common name of the certificate s serves for name.
func served(s *Store, name string) string {
	c, _ := s.Lookup(name)
	if c == nil {
		return ""
	}
	return c.Leaf.Subject.CommonName
}

func TestReloaderCheck(t *testing.T) {
	dir := t.TempDir()
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"a.test"}})
	b := issue(t, nil, leafSpec{cn: "b", dns: []string{"b.test"}})
	c := issue(t, nil, leafSpec{cn: "c", dns: []string{"c.test"}})
	expired := issue(t, nil, leafSpec{cn: "expired", dns: []string{"x.test"}, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	certFile, keyFile := writePair(t, dir, "site", a)
	static := issue(t, nil, leafSpec{cn: "static", dns: []string{"static.test"}})
	staticCert, staticKey := writePair(t, dir, "static", static)

	var (
		logs     syncBuffer
		errs     []string
		reloaded []string
	)
	store := NewStore(StoreOptions{UnknownSNI: FallbackReject})
	r, err := NewReloader(store, ReloaderOptions{
		Files: []FilePair{
			{CertFile: staticCert, KeyFile: staticKey, Default: true},
			{CertFile: certFile, KeyFile: keyFile},
		},
		Interval: time.Hour, // driven by Check
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		OnError: func(p FilePair, err error) {
			if p.CertFile != certFile {
				t.Errorf("OnError for %s", p.CertFile)
			}
			errs = append(errs, err.Error())
		},
		OnReload: func(p FilePair, c *tls.Certificate) {
			reloaded = append(reloaded, c.Leaf.Subject.CommonName)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		Served   [4]string // for a.test, b.test, c.test, static.test
		Errs     int
		Reloaded []string
	}
	check := func(step string, wantErr string, want state) {
		t.Helper()
		err := r.Check()
		if (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: Check() = %v, want error containing %q", step, err, wantErr)
		}
		got := state{Errs: len(errs), Reloaded: reloaded}
		for i, n := range []string{"a.test", "b.test", "c.test", "static.test"} {
			got.Served[i] = served(store, n)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", step, diff)
		}
	}

	check("unchanged", "", state{Served: [4]string{"a", "", "", "static"}})

	writeFile(t, certFile, b.certPEM)
	writeFile(t, keyFile, b.keyPEM)
	check("rotated to b; hostnames follow the new certificate", "",
		state{Served: [4]string{"", "b", "", "static"}, Reloaded: []string{"b"}})

	writeFile(t, certFile, []byte("garbage"))
	check("garbage keeps b", "no CERTIFICATE PEM block",
		state{Served: [4]string{"", "b", "", "static"}, Errs: 1, Reloaded: []string{"b"}})
	check("same garbage is reported once", "",
		state{Served: [4]string{"", "b", "", "static"}, Errs: 1, Reloaded: []string{"b"}})

	writeFile(t, certFile, c.certPEM) // key still b's: a rotation half done
	check("half-written pair keeps b", "private key does not match",
		state{Served: [4]string{"", "b", "", "static"}, Errs: 2, Reloaded: []string{"b"}})
	writeFile(t, keyFile, c.keyPEM)
	check("completed pair loads c", "",
		state{Served: [4]string{"", "", "c", "static"}, Errs: 2, Reloaded: []string{"b", "c"}})

	writeFile(t, certFile, expired.certPEM)
	writeFile(t, keyFile, expired.keyPEM)
	check("expired keeps c", "certificate has expired",
		state{Served: [4]string{"", "", "c", "static"}, Errs: 3, Reloaded: []string{"b", "c"}})

	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	check("missing file keeps c", "certificate file",
		state{Served: [4]string{"", "", "c", "static"}, Errs: 4, Reloaded: []string{"b", "c"}})
	check("missing file is reported once", "",
		state{Served: [4]string{"", "", "c", "static"}, Errs: 4, Reloaded: []string{"b", "c"}})

	writeFile(t, certFile, a.certPEM)
	writeFile(t, keyFile, a.keyPEM)
	check("back to a", "",
		state{Served: [4]string{"a", "", "", "static"}, Errs: 4, Reloaded: []string{"b", "c", "a"}})

	for _, e := range errs {
		if !strings.Contains(e, "keeping the previous certificate") || !strings.Contains(e, certFile) {
			t.Errorf("error %q does not say what happened to which file", e)
		}
	}
	if got := strings.Count(logs.String(), "certificate reload failed"); got != 4 {
		t.Errorf("logged %d failures, want 4:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), "certificate reloaded"); got != 3 {
		t.Errorf("logged %d reloads, want 3:\n%s", got, logs.String())
	}
}

func TestReloaderAllowExpiredWarns(t *testing.T) {
	dir := t.TempDir()
	expired := issue(t, nil, leafSpec{cn: "expired", dns: []string{"x.test"}, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	certFile, keyFile := writePair(t, dir, "x", expired)
	var logs syncBuffer
	store := NewStore(StoreOptions{})
	_, err := NewReloader(store, ReloaderOptions{
		Files:   []FilePair{{CertFile: certFile, KeyFile: keyFile}},
		KeyPair: KeyPairOptions{AllowExpired: true},
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if served(store, "x.test") != "expired" {
		t.Error("expired certificate not served with AllowExpired")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "certificate has expired") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}

func TestReloaderRun(t *testing.T) {
	dir := t.TempDir()
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"svc.test"}})
	b := issue(t, nil, leafSpec{cn: "b", dns: []string{"svc.test"}})
	certFile, keyFile := writePair(t, dir, "svc", a)
	store := NewStore(StoreOptions{})
	r, err := NewReloader(store, ReloaderOptions{
		Files:    []FilePair{{CertFile: certFile, KeyFile: keyFile}},
		Interval: 10 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	// Write the key first, then the certificate: polls in between see a
	// mismatched pair and must keep serving a.
	writeFile(t, keyFile, b.keyPEM)
	writeFile(t, certFile, b.certPEM)
	deadline := time.Now().Add(5 * time.Second)
	for served(store, "svc.test") != "b" {
		if got := served(store, "svc.test"); got != "a" {
			t.Fatalf("served %q while rotating", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the new certificate within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewReloaderErrors(t *testing.T) {
	dir := t.TempDir()
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"a.test"}})
	certFile, keyFile := writePair(t, dir, "a", a)
	noNames := issue(t, nil, leafSpec{cn: "nonames"})
	nnCert, nnKey := writePair(t, dir, "nonames", noNames)
	good := FilePair{CertFile: certFile, KeyFile: keyFile}
	tests := []struct {
		name  string
		store *Store
		opts  ReloaderOptions
		want  string
	}{
		{"nil store", nil, ReloaderOptions{Files: []FilePair{good}}, "store: nil"},
		{"no files", NewStore(StoreOptions{}), ReloaderOptions{}, "ReloaderOptions.Files: empty"},
		{"negative interval", NewStore(StoreOptions{}), ReloaderOptions{Files: []FilePair{good}, Interval: -1}, "ReloaderOptions.Interval"},
		{"missing file", NewStore(StoreOptions{}), ReloaderOptions{Files: []FilePair{good, {CertFile: dir + "/nope", KeyFile: keyFile}}}, "ReloaderOptions.Files[1]: certificate file"},
		{"bad pair", NewStore(StoreOptions{}), ReloaderOptions{Files: []FilePair{{CertFile: certFile, KeyFile: certFile}}}, "ReloaderOptions.Files[0]"},
		{"store rejects", NewStore(StoreOptions{}), ReloaderOptions{Files: []FilePair{good, {CertFile: nnCert, KeyFile: nnKey}}}, "certs[1].Hostnames: empty"},
		{"bad hostname", NewStore(StoreOptions{}), ReloaderOptions{Files: []FilePair{{CertFile: certFile, KeyFile: keyFile, Hostnames: []string{"a b"}}}}, "certs[0].Hostnames[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReloader(tt.store, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewReloader error %v, want one containing %q", err, tt.want)
			}
			if r != nil {
				t.Error("Reloader returned with an error")
			}
			if tt.store != nil {
				if c, _ := tt.store.Lookup("a.test"); c != nil {
					t.Error("failed NewReloader changed the store")
				}
			}
		})
	}
}

// TestReloaderRejectedByStore: a new certificate that loads but that the
// store would refuse (here, no hostnames for a non-default pair) keeps the
// previous one.
func TestReloaderRejectedByStore(t *testing.T) {
	dir := t.TempDir()
	def := issue(t, nil, leafSpec{cn: "def", dns: []string{"def.test"}})
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"a.test"}})
	noNames := issue(t, nil, leafSpec{cn: "nonames"})
	defCert, defKey := writePair(t, dir, "def", def)
	certFile, keyFile := writePair(t, dir, "a", a)
	store := NewStore(StoreOptions{})
	var got error
	r, err := NewReloader(store, ReloaderOptions{
		Files:   []FilePair{{CertFile: defCert, KeyFile: defKey}, {CertFile: certFile, KeyFile: keyFile}},
		Logger:  slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
		OnError: func(_ FilePair, err error) { got = err },
	})
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, dir, "a", noNames)
	err = r.Check()
	if err == nil || !errors.Is(err, got) || !strings.Contains(err.Error(), "certs[1].Hostnames: empty") {
		t.Errorf("Check() = %v, OnError got %v", err, got)
	}
	if served(store, "a.test") != "a" {
		t.Error("the previous certificate is no longer served")
	}
}
