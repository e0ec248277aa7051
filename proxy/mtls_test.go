package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/upstream"
)

// testCA is a certificate authority that issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate with common name cn.
func (ca *testCA) client(t testing.TB, cn string) Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Certificate{
		Name:    cn,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// mtlsClient returns a client for serverName that trusts server and, when
// asked for a certificate, presents cert (nothing when cert is nil).
// It records in asked whether it was asked.
func mtlsClient(t testing.TB, serverName string, server Certificate, cert *Certificate, asked *bool) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(server.CertPEM) {
		t.Fatal("bad server certificate")
	}
	var kp *tls.Certificate
	if cert != nil {
		c, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		kp = &c
	}
	tc := &tls.Config{
		ServerName: serverName,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if asked != nil {
				*asked = true
			}
			if kp == nil {
				return &tls.Certificate{}, nil
			}
			return kp, nil
		},
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// mtlsConfig is one HTTPS listener for svc.example.org on addr, with
// validation v, routed to backend.
func mtlsConfig(addr string, server Certificate, v *ClientValidation, backend string) Config {
	return Config{
		Listeners: []Listener{{Name: "gw/https", Address: addr, Protocol: HTTPS, Certificates: []Certificate{server}, ClientValidation: v}},
		Routes:    []Route{{Namespace: "ns", Name: "r", Listeners: []string{"gw/https"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "b", Weight: 1}}}}}},
		Backends:  []Backend{{Spec: upstream.Spec{Name: "b", Endpoints: []upstream.Endpoint{{Address: backend}}}}},
	}
}

// try makes one request and returns the status, or 0 and the error.
func try(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestClientValidation(t *testing.T) {
	backend := echoBackend(t, "b")
	server := selfSigned(t, "svc.example.org")
	caA, caB := newTestCA(t, "CA A"), newTestCA(t, "CA B")
	certA, certB := caA.client(t, "client a"), caB.client(t, "client b")
	tests := []struct {
		name   string
		mode   ClientValidationMode
		client *Certificate
		want   int // 0: refused
	}{
		{"valid only: valid certificate", AllowValidOnly, &certA, 200},
		{"valid only: certificate of another CA", AllowValidOnly, &certB, 0},
		{"valid only: no certificate", AllowValidOnly, nil, 0},
		{"insecure fallback: valid certificate", AllowInsecureFallback, &certA, 200},
		{"insecure fallback: certificate of another CA", AllowInsecureFallback, &certB, 200},
		{"insecure fallback: no certificate", AllowInsecureFallback, nil, 200},
	}
	for _, impl := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		p := newTestProxy(t, Options{Server: impl})
		for _, tt := range tests {
			v := &ClientValidation{Name: "ns/ca-a", CACertificates: caA.pem, Mode: tt.mode}
			if err := p.Apply(mtlsConfig("127.0.0.1", server, v, addrOf(backend))); err != nil {
				t.Fatal(err)
			}
			addr, _ := p.Addr("gw/https")
			var asked bool
			got, err := try(mtlsClient(t, "svc.example.org", server, tt.client, &asked), "https://"+addr.String()+"/")
			if got != tt.want || !asked {
				t.Errorf("server %v, %s: status %d (error %v), asked for a certificate %t; want %d, asked", impl, tt.name, got, err, asked, tt.want)
			}
		}
	}
}

// TestClientValidationChanges changes a port's validation with Apply: new
// connections follow it at once, on the port already bound.
func TestClientValidationChanges(t *testing.T) {
	backend := echoBackend(t, "b")
	server := selfSigned(t, "svc.example.org")
	caA, caB := newTestCA(t, "CA A"), newTestCA(t, "CA B")
	certA, certB := caA.client(t, "client a"), caB.client(t, "client b")
	p := newTestProxy(t, Options{})
	steps := []struct {
		v      *ClientValidation
		client *Certificate
		want   int
		asked  bool
	}{
		{nil, nil, 200, false},
		{&ClientValidation{CACertificates: caA.pem}, nil, 0, true},
		{&ClientValidation{CACertificates: caA.pem}, &certA, 200, true},
		{&ClientValidation{CACertificates: caB.pem}, &certA, 0, true},
		{&ClientValidation{CACertificates: caB.pem}, &certB, 200, true},
		{&ClientValidation{CACertificates: caB.pem, Mode: AllowInsecureFallback}, &certA, 200, true},
		{nil, &certA, 200, false},
	}
	var bound string
	for i, st := range steps {
		if err := p.Apply(mtlsConfig("127.0.0.1", server, st.v, addrOf(backend))); err != nil {
			t.Fatal(err)
		}
		addr, _ := p.Addr("gw/https")
		if bound == "" {
			bound = addr.String()
		} else if addr.String() != bound {
			t.Fatalf("step %d: the port was rebound (%s, was %s)", i, addr, bound)
		}
		var asked bool
		got, err := try(mtlsClient(t, "svc.example.org", server, st.client, &asked), "https://"+bound+"/")
		if got != st.want || asked != st.asked {
			t.Errorf("step %d: status %d (error %v), asked %t; want %d, asked %t", i, got, err, asked, st.want, st.asked)
		}
	}
}

// TestClientValidationPerPort checks that the listeners of one port must
// agree on client validation, and that a port whose CA bundle cannot be
// used refuses every client rather than validating none.
func TestClientValidationPerPort(t *testing.T) {
	backend := echoBackend(t, "b")
	server := selfSigned(t, "svc.example.org", "other.example.org")
	caA, caB := newTestCA(t, "CA A"), newTestCA(t, "CA B")
	certA := caA.client(t, "client a")
	p := newTestProxy(t, Options{})

	cfg := mtlsConfig("127.0.0.1", server, &ClientValidation{Name: "ns/a", CACertificates: caA.pem}, addrOf(backend))
	cfg.Listeners[0].Hostname = "svc.example.org"
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/other", Address: "127.0.0.1", Protocol: HTTPS, Hostname: "other.example.org",
		Certificates: []Certificate{server}, ClientValidation: &ClientValidation{Name: "ns/b", CACertificates: caB.pem}})
	cfg.Routes[0].Listeners = append(cfg.Routes[0].Listeners, "gw/other")
	err := p.Apply(cfg)
	var aerr *ApplyError
	if !errors.As(err, &aerr) || len(aerr.Listeners) != 1 || aerr.Listeners["gw/other"] == nil ||
		!strings.Contains(aerr.Listeners["gw/other"].Error(), "clientValidation differs") {
		t.Fatalf("Apply with two validations on one port: %v, want an error for gw/other only", err)
	}
	addr, _ := p.Addr("gw/https")
	url := "https://" + addr.String() + "/"
	if got, err := try(mtlsClient(t, "svc.example.org", server, &certA, nil), url); got != 200 {
		t.Errorf("the port's first listener: %d (%v), want 200", got, err)
	}
	// The same validation on both listeners is fine.
	cfg.Listeners[1].ClientValidation = &ClientValidation{Name: "ns/a", CACertificates: caA.pem}
	if err := p.Apply(cfg); err != nil {
		t.Fatalf("Apply with one validation on both listeners: %v", err)
	}

	// An unusable bundle fails closed.
	bad := mtlsConfig("127.0.0.1", server, &ClientValidation{Name: "ns/junk", CACertificates: []byte("junk")}, addrOf(backend))
	err = p.Apply(bad)
	if !errors.As(err, &aerr) || aerr.Listeners["gw/https"] == nil || !strings.Contains(aerr.Listeners["gw/https"].Error(), `clientValidation "ns/junk"`) {
		t.Fatalf("Apply with a bad CA bundle: %v, want a listener error", err)
	}
	for _, cert := range []*Certificate{&certA, nil} {
		if got, err := try(mtlsClient(t, "svc.example.org", server, cert, nil), url); got != 0 {
			t.Errorf("with a bad CA bundle, client with certificate %t: %d, want the handshake refused", cert != nil, got)
		} else if err == nil {
			t.Error("no error")
		}
	}

	// Structural errors reject the Config.
	for _, tc := range []struct {
		l    Listener
		want string
	}{
		{Listener{Name: "h", Protocol: HTTP, ClientValidation: &ClientValidation{CACertificates: caA.pem}}, "only HTTPS listeners"},
		{Listener{Name: "h", Protocol: HTTPS, ClientValidation: &ClientValidation{}}, "caCertificates: required"},
		{Listener{Name: "h", Protocol: HTTPS, ClientValidation: &ClientValidation{CACertificates: caA.pem, Mode: 5}}, "mode: unknown value ClientValidationMode(5)"},
	} {
		err := p.Apply(Config{Listeners: []Listener{tc.l}})
		if err == nil || errors.As(err, &aerr) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply(%+v): %v, want a rejection containing %q", tc.l.ClientValidation, err, tc.want)
		}
	}
}

// clientCertBackend is a TLS backend that requires a client certificate
// issued by ca and answers with the certificate's common name.
func clientCertBackend(t testing.TB, ca *testCA) (*httptest.Server, []byte) {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// TestBackendClientCertificate dials a TLS backend that requires a client
// certificate: the backend's ClientCertificate is presented, and replacing
// it (a renewal under the same name) reaches new connections.
func TestBackendClientCertificate(t *testing.T) {
	ca := newTestCA(t, "backend client CA")
	srv, serverCA := clientCertBackend(t, ca)
	first, renewed := ca.client(t, "gateway"), ca.client(t, "gateway renewed")
	renewed.Name = first.Name
	other := newTestCA(t, "other").client(t, "stranger")

	p := newTestProxy(t, Options{})
	apply := func(c *Certificate) error {
		return p.Apply(Config{
			Listeners: []Listener{{Name: "l", Address: "127.0.0.1", Protocol: HTTP}},
			Routes:    []Route{{Namespace: "ns", Name: "r", Listeners: []string{"l"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "tls", Weight: 1}}}}}},
			Backends: []Backend{{
				Spec:     upstream.Spec{Name: "tls", Endpoints: []upstream.Endpoint{{Address: addrOf(srv)}}},
				Protocol: BackendTLS, TLS: &BackendTLSConfig{ServerName: "example.com", CACertificates: serverCA, ClientCertificate: c}}},
		})
	}
	steps := []struct {
		cert     *Certificate
		wantCode int
		wantBody string
	}{
		{&first, 200, "gateway"},
		{nil, 502, ""},
		{&other, 502, ""},
		{&first, 200, "gateway"},
		{&renewed, 200, "gateway renewed"},
	}
	for i, st := range steps {
		if err := apply(st.cert); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		code, body, _ := get(t, http.DefaultClient, baseURL(t, p, "l")+"/")
		if code != st.wantCode || (st.wantBody != "" && body != st.wantBody) {
			t.Errorf("step %d: %d %q, want %d %q", i, code, body, st.wantCode, st.wantBody)
		}
	}

	// A client certificate that does not load leaves the backend out.
	broken := Certificate{Name: "ns/broken", CertPEM: first.CertPEM, KeyPEM: other.KeyPEM}
	err := apply(&broken)
	var aerr *ApplyError
	if !errors.As(err, &aerr) || aerr.Backends["tls"] == nil || !strings.Contains(aerr.Backends["tls"].Error(), `tls.clientCertificate "ns/broken"`) {
		t.Fatalf("Apply with a mismatched key: %v, want a backend error", err)
	}
	if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "l")+"/"); code != 500 {
		t.Errorf("backend left out: %d, want 500", code)
	}
}

func TestClientValidationModeString(t *testing.T) {
	for m, want := range map[ClientValidationMode]string{
		AllowValidOnly:          "AllowValidOnly",
		AllowInsecureFallback:   "AllowInsecureFallback",
		ClientValidationMode(7): "ClientValidationMode(7)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(m), got, want)
		}
		if b, _ := m.MarshalText(); string(b) != want {
			t.Errorf("%d.MarshalText() = %q, want %q", uint8(m), b, want)
		}
	}
}
