// Package tlsconfig builds the TLS configurations of a gateway: the server
// side, which terminates client connections with a certificate selected by
// SNI, and the client side, which dials TLS backends.
//
// # Server certificates
//
// A [Store] holds the certificates of a listener (or of a port shared by
// several listeners) and selects one per handshake from the server name the
// client sent:
//
//   - an exact hostname wins ("www.example.com");
//   - otherwise a wildcard hostname ("*.example.com"). With
//     [WildcardOneLabel], the default and the semantics of crypto/x509 and of
//     browsers, "*" stands for exactly one label; with [WildcardAnyLabels],
//     the semantics of Gateway API listener hostnames, it stands for one or
//     more labels and the longest matching wildcard wins. Neither matches
//     "example.com" itself;
//   - otherwise, and when the client sent no server name, the default
//     certificate is served, or the handshake is refused with an
//     unrecognized_name alert, as [StoreOptions] says.
//
// Server names are compared case-insensitively and one trailing dot is
// ignored. A lookup takes no lock and does not allocate: the certificates
// are an immutable snapshot, replaced as a whole by [Store.Update] with one
// atomic store. A new handshake sees the new certificates; established
// connections keep the certificate they were made with.
//
// [NewServerConfig] returns a *tls.Config reading from a Store, with ALPN
// "h2" and "http/1.1" (or HTTP/1.1 only), TLS 1.2 as the minimum version,
// only ECDHE key exchange with AEAD ciphers for TLS 1.2, and the X25519 and
// P-256 key exchanges (plus the X25519MLKEM768 post-quantum hybrid).
//
// # Client certificates
//
// A Store also says whether its handshakes ask clients for a certificate
// (mutual TLS), as a Gateway's frontend TLS validation does:
// [Store.SetClientAuth] with [ClientAuthRequireValid] requires a
// certificate that verifies against a PEM bundle of trusted authorities,
// and [ClientAuthAllowInsecure] asks for one but accepts any connection.
// The setting is replaced atomically, like the certificates, and applies
// to new handshakes: the config from [NewServerConfig] hands those a copy
// of itself with the client authentication set, made once per setting,
// and handshakes of a store without client authentication use the config
// itself. A resumed TLS session is held to the setting in force when it
// resumes.
//
// # Loading certificates
//
// [LoadKeyPair] parses a PEM chain and key, checks that the key belongs to
// the leaf and that the leaf is within its validity period; expiry is an
// error ([ErrExpired]) unless [KeyPairOptions].AllowExpired. A [Reloader]
// keeps a Store in step with certificate files, polling their content: a
// file that fails to load keeps the previous certificate in service and
// reports the failure to a slog.Logger and a callback. [SelfSigned] makes a
// self-signed certificate for development and first starts.
//
// # Backends
//
// [NewBackendConfig] returns the *tls.Config for dialing a backend as a
// BackendTLSPolicy describes it: trusted roots from PEM or the system,
// a server name used for SNI and verification, or subject alternative names
// (DNS or URI) that replace the server name for verification, ALPN for h2
// and HTTP/1.1, and an optional client certificate. Verification cannot be
// turned off.
package tlsconfig
