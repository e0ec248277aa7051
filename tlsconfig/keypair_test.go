package tlsconfig

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// selfSignedWithKey makes a self-signed certificate for key and returns its
// PEM.
func selfSignedWithKey(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: "k"},
		DNSNames:     []string{"k.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestLoadKeyPair(t *testing.T) {
	ecKey := must[*ecdsa.PrivateKey](t)(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	rsaKey := must[*rsa.PrivateKey](t)(rsa.GenerateKey(rand.Reader, 1024))
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecCert := selfSignedWithKey(t, ecKey)
	rsaCert := selfSignedWithKey(t, rsaKey)
	edCert := selfSignedWithKey(t, edKey)
	ecSEC1 := pemBlock("EC PRIVATE KEY", must[[]byte](t)(x509.MarshalECPrivateKey(ecKey)))
	rsaPKCS1 := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	edPKCS8 := pemBlock("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(edKey)))
	xKey := must[*ecdh.PrivateKey](t)(ecdh.X25519().GenerateKey(rand.Reader))
	xPKCS8 := pemBlock("PRIVATE KEY", must[[]byte](t)(x509.MarshalPKCS8PrivateKey(xKey)))

	root := newTestCA(t, "root")
	inter := issue(t, root, leafSpec{cn: "intermediate", isCA: true})
	interCA := &testCA{cert: inter.cert.Leaf, key: inter.cert.PrivateKey.(*ecdsa.PrivateKey)}
	leaf := issue(t, interCA, leafSpec{cn: "leaf", dns: []string{"leaf.test"}})
	other := issue(t, nil, leafSpec{cn: "other", dns: []string{"other.test"}})
	expired := issue(t, nil, leafSpec{cn: "expired", notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	future := issue(t, nil, leafSpec{cn: "future", notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(2 * time.Hour)})

	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	inTwoHours := func() time.Time { return time.Now().Add(2 * time.Hour) }
	tests := []struct {
		name      string
		cert, key []byte
		opts      KeyPairOptions
		chainLen  int    // on success
		wantErr   string // substring, on failure
		wantIs    error
	}{
		{name: "ECDSA PKCS#8", cert: other.certPEM, key: other.keyPEM, chainLen: 1},
		{name: "ECDSA SEC 1", cert: ecCert, key: ecSEC1, chainLen: 1},
		{name: "RSA PKCS#1", cert: rsaCert, key: rsaPKCS1, chainLen: 1},
		{name: "Ed25519 PKCS#8", cert: edCert, key: edPKCS8, chainLen: 1},
		{name: "one file with both", cert: cat(other.keyPEM, other.certPEM), key: cat(other.keyPEM, other.certPEM), chainLen: 1},
		{name: "with intermediate", cert: cat(leaf.certPEM, inter.certPEM), key: leaf.keyPEM, chainLen: 2},
		{name: "chain in wrong order", cert: cat(inter.certPEM, leaf.certPEM), key: leaf.keyPEM,
			wantErr: "key: matches certificate block 1, not the first", wantIs: ErrKeyMismatch},
		{name: "key of another certificate", cert: other.certPEM, key: leaf.keyPEM, wantErr: "key: private key does not match", wantIs: ErrKeyMismatch},
		{name: "expired", cert: expired.certPEM, key: expired.keyPEM, wantErr: "expired at", wantIs: ErrExpired},
		{name: "expired allowed", cert: expired.certPEM, key: expired.keyPEM, opts: KeyPairOptions{AllowExpired: true}, chainLen: 1},
		{name: "not yet valid", cert: future.certPEM, key: future.keyPEM, wantErr: "valid from", wantIs: ErrNotYetValid},
		{name: "expired by injected clock", cert: other.certPEM, key: other.keyPEM, opts: KeyPairOptions{Now: inTwoHours}, wantIs: ErrExpired},
		{name: "no certificate", cert: other.keyPEM, key: other.keyPEM, wantErr: "certificate: no CERTIFICATE PEM block"},
		{name: "not PEM", cert: []byte("hello"), key: other.keyPEM, wantErr: "certificate: no CERTIFICATE PEM block"},
		{name: "corrupt certificate", cert: cat(other.certPEM, pemBlock("CERTIFICATE", []byte{0x30, 1, 2})), key: other.keyPEM, wantErr: "certificate: block 1:"},
		{name: "no key", cert: other.certPEM, key: other.certPEM, wantErr: "key: no PRIVATE KEY PEM block"},
		{name: "encrypted PKCS#8", cert: other.certPEM, key: pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), wantErr: "key: encrypted private keys are not supported"},
		{name: "encrypted legacy", cert: other.certPEM,
			key:     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}),
			wantErr: "key: encrypted private keys are not supported"},
		{name: "corrupt key", cert: other.certPEM, key: pemBlock("PRIVATE KEY", []byte{0x30, 1}), wantErr: "key: PRIVATE KEY block:"},
		{name: "X25519 key", cert: other.certPEM, key: xPKCS8, wantErr: "unsupported key type *ecdh.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadKeyPair(tt.cert, tt.key, tt.opts)
			if tt.wantErr == "" && tt.wantIs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Certificate) != tt.chainLen || c.Leaf == nil || !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
					t.Errorf("chain of %d, Leaf set %t; want chain of %d with Leaf", len(c.Certificate), c.Leaf != nil, tt.chainLen)
				}
				if !publicKeyMatches(c.Leaf.PublicKey, c.PrivateKey.(crypto.Signer)) {
					t.Error("returned key does not match leaf")
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadKeyPair succeeded, want error %q", tt.wantErr)
			}
			if c != nil {
				t.Error("certificate returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "tlsconfig: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want one containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
		})
	}
}

func TestCheckValidity(t *testing.T) {
	c := issue(t, nil, leafSpec{
		dns:       []string{"v.test"},
		notBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		notAfter:  time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC),
	}).cert.Leaf
	tests := []struct {
		now  time.Time
		want string
	}{
		{time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC), "tlsconfig: certificate for [v.test]: valid from 2030-01-01T00:00:00Z, now is 2029-12-31T00:00:00Z: certificate is not yet valid"},
		{time.Date(2030, 1, 15, 0, 0, 0, 0, time.UTC), ""},
		{time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC), "tlsconfig: certificate for [v.test]: expired at 2030-02-01T00:00:00Z, now is 2030-03-01T00:00:00Z: certificate has expired"},
	}
	for _, tt := range tests {
		got := ""
		if err := CheckValidity(c, tt.now); err != nil {
			got = err.Error()
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("CheckValidity at %v (-want +got):\n%s", tt.now, diff)
		}
	}
}

func TestLoadKeyPairFiles(t *testing.T) {
	dir := t.TempDir()
	c := issue(t, nil, leafSpec{cn: "f", dns: []string{"f.test"}})
	certFile, keyFile := writePair(t, dir, "f", c)
	got, err := LoadKeyPairFiles(certFile, keyFile, KeyPairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Certificate[0], c.cert.Certificate[0]) {
		t.Error("loaded a different certificate")
	}
	if _, err := LoadKeyPairFiles(dir+"/missing.pem", keyFile, KeyPairOptions{}); err == nil || !strings.Contains(err.Error(), "certificate file") {
		t.Errorf("missing certificate file: %v", err)
	}
	if _, err := LoadKeyPairFiles(certFile, dir+"/missing.pem", KeyPairOptions{}); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("missing key file: %v", err)
	}
	if _, err := LoadKeyPairFiles(keyFile, keyFile, KeyPairOptions{}); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("bad pair error should name the files: %v", err)
	}
}
