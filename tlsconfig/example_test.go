package tlsconfig_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/rauta/rauta/tlsconfig"
)

// Serve TLS with a certificate chosen by SNI, then rotate it at run time.
func Example() {
	// A self-signed certificate, as a quickstart would make at start.
	cert, certPEM, _, err := tlsconfig.SelfSigned([]string{"*.example.com"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	store := tlsconfig.NewStore(tlsconfig.StoreOptions{UnknownSNI: tlsconfig.FallbackReject})
	if err := store.Update(tlsconfig.Certificate{Cert: &cert}); err != nil {
		log.Fatal(err)
	}
	serverConfig, err := tlsconfig.NewServerConfig(store, tlsconfig.ServerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConfig)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()

	// A client that trusts the certificate, configured as for a backend.
	dial := func(name string, trusted []byte) {
		clientConfig, err := tlsconfig.NewBackendConfig(tlsconfig.BackendOptions{
			ServerName:     name,
			CACertificates: trusted,
		})
		if err != nil {
			log.Fatal(err)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), clientConfig)
		if err != nil {
			fmt.Println(name, "refused")
			return
		}
		defer c.Close()
		st := c.ConnectionState()
		fmt.Println(name, st.NegotiatedProtocol, st.PeerCertificates[0].DNSNames)
	}
	dial("shop.example.com", certPEM)
	dial("shop.example.net", certPEM)

	// Rotate: new handshakes get the new certificate.
	next, nextPEM, _, err := tlsconfig.SelfSigned([]string{"*.example.com", "*.example.net"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Update(tlsconfig.Certificate{Cert: &next}); err != nil {
		log.Fatal(err)
	}
	dial("shop.example.net", nextPEM)
	// Output:
	// shop.example.com h2 [*.example.com]
	// shop.example.net refused
	// shop.example.net h2 [*.example.com *.example.net]
}

// Lookup shows which certificate a server name selects, without a
// handshake.
func ExampleStore_Lookup() {
	web, _, _, err := tlsconfig.SelfSigned([]string{"www.example.com"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	wild, _, _, err := tlsconfig.SelfSigned([]string{"*.example.com"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	store := tlsconfig.NewStore(tlsconfig.StoreOptions{Wildcard: tlsconfig.WildcardAnyLabels})
	if err := store.Update(
		tlsconfig.Certificate{Cert: &web, Default: true},
		tlsconfig.Certificate{Cert: &wild},
	); err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"WWW.Example.com.", "api.example.com", "a.b.example.com", "example.com", ""} {
		c, how := store.Lookup(name)
		fmt.Printf("%q: %v %v\n", name, how, c.Leaf.DNSNames)
	}
	// Output:
	// "WWW.Example.com.": MatchExact [www.example.com]
	// "api.example.com": MatchWildcard [*.example.com]
	// "a.b.example.com": MatchWildcard [*.example.com]
	// "example.com": MatchDefault [www.example.com]
	// "": MatchDefault [www.example.com]
}

// Build the client config for a backend protected by a BackendTLSPolicy
// that names a SPIFFE identity.
func ExampleNewBackendConfig() {
	_, caPEM, _, err := tlsconfig.SelfSigned([]string{"ca.internal"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := tlsconfig.NewBackendConfig(tlsconfig.BackendOptions{
		ServerName:     "cart.shop.svc",
		CACertificates: caPEM,
		SubjectAltNames: []tlsconfig.SubjectAltName{
			{Type: tlsconfig.SANURI, Value: "spiffe://cluster.local/ns/shop/sa/cart"},
		},
		Protocols: tlsconfig.H2Only,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.ServerName, cfg.NextProtos)
	// Output:
	// cart.shop.svc [h2]
}

// Require client certificates (mutual TLS) on a listener, then relax the
// requirement at run time.
func ExampleStore_SetClientAuth() {
	server, serverPEM, _, err := tlsconfig.SelfSigned([]string{"api.example.com"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	// A client certificate, trusted as its own authority for brevity.
	client, clientPEM, _, err := tlsconfig.SelfSigned([]string{"client.example.com"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	store := tlsconfig.NewStore(tlsconfig.StoreOptions{})
	if err := store.Update(tlsconfig.Certificate{Cert: &server}); err != nil {
		log.Fatal(err)
	}
	if err := store.SetClientAuth(tlsconfig.ClientAuth{Mode: tlsconfig.ClientAuthRequireValid, CACertificates: clientPEM}); err != nil {
		log.Fatal(err)
	}
	serverConfig, err := tlsconfig.NewServerConfig(store, tlsconfig.ServerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConfig)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Echo one byte once the handshake is done.
				b := make([]byte, 1)
				if _, err := c.Read(b); err == nil {
					c.Write(b)
				}
			}()
		}
	}()

	try := func(what string, cert *tls.Certificate) {
		clientConfig, err := tlsconfig.NewBackendConfig(tlsconfig.BackendOptions{
			ServerName:        "api.example.com",
			CACertificates:    serverPEM,
			ClientCertificate: cert,
		})
		if err != nil {
			log.Fatal(err)
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), clientConfig)
		if err == nil {
			defer c.Close()
			// With TLS 1.3 the server's verdict comes with the first read.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Write([]byte{1}); err == nil {
				_, err = c.Read(make([]byte, 1))
			}
		}
		fmt.Printf("%s: %v accepted %t\n", what, store.ClientAuthMode(), err == nil)
	}
	try("with a certificate", &client)
	try("without", nil)

	if err := store.SetClientAuth(tlsconfig.ClientAuth{Mode: tlsconfig.ClientAuthAllowInsecure, CACertificates: clientPEM}); err != nil {
		log.Fatal(err)
	}
	try("without", nil)
	// Output:
	// with a certificate: ClientAuthRequireValid accepted true
	// without: ClientAuthRequireValid accepted false
	// without: ClientAuthAllowInsecure accepted true
}
