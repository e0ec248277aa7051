package tlsconfig

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// SelfSigned makes a self-signed ECDSA P-256 certificate valid for hosts
// (DNS names, wildcards such as "*.example.com", or IP addresses) from one
// minute ago, to allow for clock skew, until validFor from now. It returns
// the certificate ready to serve (Leaf set) and its chain and PKCS #8 key
// in PEM, for writing to files or handing to clients as their trust root.
//
// The certificate is an end-entity certificate for both server and client
// authentication; clients trust it by adding it to their roots. It is meant
// for development and first starts, not production.
func SelfSigned(hosts []string, validFor time.Duration) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, nil, nil, errors.New("tlsconfig: SelfSigned: hosts: empty")
	}
	if validFor <= 0 {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: validFor: %v is not positive", validFor)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"rauta self-signed"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for i, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		name, err := normalizeHostname(h, true)
		if err != nil {
			return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: hosts[%d]: %w", i, err)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	}
	if len(hosts[0]) <= 64 { // the X.509 upper bound for a common name
		tmpl.Subject.CommonName = hosts[0]
	}
	tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: serial number: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: generating key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsconfig: SelfSigned: encoding key: %w", err)
	}
	cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return cert, certPEM, keyPEM, nil
}
