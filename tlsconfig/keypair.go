package tlsconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

var (
	// ErrExpired is wrapped by errors for a certificate whose NotAfter is in
	// the past.
	ErrExpired = errors.New("certificate has expired")
	// ErrNotYetValid is wrapped by errors for a certificate whose NotBefore
	// is in the future.
	ErrNotYetValid = errors.New("certificate is not yet valid")
	// ErrKeyMismatch is wrapped by errors for a private key that does not
	// belong to the leaf certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
)

// KeyPairOptions configures [LoadKeyPair]. The zero value rejects a
// certificate outside its validity period, judged by the current time.
type KeyPairOptions struct {
	// AllowExpired accepts a leaf certificate that is expired or not yet
	// valid. Clients will normally refuse it; the caller can still learn of
	// the problem with [CheckValidity].
	AllowExpired bool
	// Now returns the time validity is judged at; nil means time.Now.
	Now func() time.Time
}

func (o KeyPairOptions) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// LoadKeyPair parses a PEM certificate chain (leaf first, then
// intermediates) and a PEM private key (PKCS #8, PKCS #1 or SEC 1; ECDSA,
// RSA or Ed25519) and returns them as a certificate with Leaf set.
//
// It checks that every CERTIFICATE block parses, that the key belongs to
// the first certificate (wrapping [ErrKeyMismatch] otherwise, and saying so
// when the key belongs to a later block, the usual sign of a chain in the
// wrong order), and, unless opts.AllowExpired, that the leaf is within its
// validity period (wrapping [ErrExpired] or [ErrNotYetValid]). Blocks of
// other types are ignored, so a file holding both certificate and key can be
// passed as both arguments. Encrypted keys are not supported.
func LoadKeyPair(certPEM, keyPEM []byte, opts KeyPairOptions) (*tls.Certificate, error) {
	c, err := loadKeyPair(certPEM, keyPEM, opts)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: %w", err)
	}
	return c, nil
}

// loadKeyPair is LoadKeyPair with errors not prefixed by the package name.
func loadKeyPair(certPEM, keyPEM []byte, opts KeyPairOptions) (*tls.Certificate, error) {
	certs, ders, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if !publicKeyMatches(certs[0].PublicKey, key) {
		for i := 1; i < len(certs); i++ {
			if publicKeyMatches(certs[i].PublicKey, key) {
				return nil, fmt.Errorf("key: matches certificate block %d, not the first; the leaf certificate must come first: %w", i, ErrKeyMismatch)
			}
		}
		return nil, fmt.Errorf("key: %w", ErrKeyMismatch)
	}
	if !opts.AllowExpired {
		if err := checkValidity(certs[0], opts.now()); err != nil {
			return nil, err
		}
	}
	return &tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: certs[0]}, nil
}

// LoadKeyPairFiles reads certFile and keyFile and calls [LoadKeyPair].
func LoadKeyPairFiles(certFile, keyFile string, opts KeyPairOptions) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: key file: %w", err)
	}
	c, err := LoadKeyPair(certPEM, keyPEM, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (files %s, %s)", err, certFile, keyFile)
	}
	return c, nil
}

// CheckValidity reports whether leaf is valid at now: an error wrapping
// [ErrNotYetValid] or [ErrExpired], naming the certificate and the dates,
// or nil.
func CheckValidity(leaf *x509.Certificate, now time.Time) error {
	if err := checkValidity(leaf, now); err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	return nil
}

func checkValidity(leaf *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("certificate %s: valid from %s, now is %s: %w",
			describe(leaf), leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrNotYetValid)
	case now.After(leaf.NotAfter):
		return fmt.Errorf("certificate %s: expired at %s, now is %s: %w",
			describe(leaf), leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// describe names a certificate for error messages.
func describe(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return fmt.Sprintf("for %v", c.DNSNames)
	}
	return fmt.Sprintf("%q", c.Subject.String())
}

// parseCertificates returns the CERTIFICATE blocks of data, parsed and raw.
func parseCertificates(data []byte) ([]*x509.Certificate, [][]byte, error) {
	var (
		certs []*x509.Certificate
		ders  [][]byte
	)
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("block %d: %w", len(certs), err)
		}
		certs = append(certs, c)
		ders = append(ders, block.Bytes)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no CERTIFICATE PEM block found")
	}
	return certs, ders, nil
}

// parsePrivateKey returns the first private key of data.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PRIVATE KEY PEM block found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, errors.New("encrypted private keys are not supported")
			}
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, errors.New("encrypted private keys are not supported")
			}
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("%s block: unsupported key type %T", block.Type, key)
	}
}

func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	p, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(pub)
}
