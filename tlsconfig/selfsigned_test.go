package tlsconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSelfSigned(t *testing.T) {
	cert, certPEM, keyPEM, err := SelfSigned([]string{"Localhost", "127.0.0.1", "*.dev.test", "::1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if diff := cmp.Diff([]string{"localhost", "*.dev.test"}, leaf.DNSNames); diff != "" {
		t.Errorf("DNSNames (-want +got):\n%s", diff)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "::1"}, ips); diff != "" {
		t.Errorf("IPAddresses (-want +got):\n%s", diff)
	}
	if leaf.Subject.CommonName != "Localhost" || leaf.IsCA {
		t.Errorf("CommonName %q, IsCA %t", leaf.Subject.CommonName, leaf.IsCA)
	}
	if now := time.Now(); CheckValidity(leaf, now) != nil || CheckValidity(leaf, now.Add(25*time.Hour)) == nil {
		t.Errorf("validity %v to %v, want now to 24h from now", leaf.NotBefore, leaf.NotAfter)
	}
	// The PEM round-trips through the loader.
	loaded, err := LoadKeyPair(certPEM, keyPEM, KeyPairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Leaf.Equal(leaf) {
		t.Error("PEM holds a different certificate")
	}

	// A client trusting the PEM (as a backend CA) completes a handshake
	// with a server using the certificate, by name and by IP.
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: &cert}); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	for _, name := range []string{"localhost", "a.dev.test", "127.0.0.1"} {
		client, err := NewBackendConfig(BackendOptions{ServerName: name, CACertificates: certPEM})
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(t, addr, client)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := echo(c, "hi"); err != nil {
			t.Error(err)
		}
	}
}

func TestSelfSignedErrors(t *testing.T) {
	tests := []struct {
		hosts    []string
		validFor time.Duration
		want     string
	}{
		{nil, time.Hour, "hosts: empty"},
		{[]string{"a.test"}, 0, "validFor"},
		{[]string{"a.test", "bad host"}, time.Hour, "hosts[1]"},
	}
	for _, tt := range tests {
		_, _, _, err := SelfSigned(tt.hosts, tt.validFor)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SelfSigned(%q, %v) error %v, want one containing %q", tt.hosts, tt.validFor, err, tt.want)
		}
	}
}

// TestSelfSignedDistinct checks that two certificates differ in key and
// serial number.
func TestSelfSignedDistinct(t *testing.T) {
	a, _, _, err := SelfSigned([]string{"a.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _, err := SelfSigned([]string{"a.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 || a.Leaf.Equal(b.Leaf) {
		t.Error("two SelfSigned calls made the same certificate")
	}
}
