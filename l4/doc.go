// Package l4 forwards TCP streams, TLS connections and UDP datagrams to
// backends: the data plane of Gateway API TCPRoutes, TLSRoutes and
// UDPRoutes.
//
// A [Forwarder] serves a [Config] of listeners and routes, compiled into
// an immutable snapshot and swapped with one atomic store by
// [Forwarder.Apply]. Connections come from a program's own listeners
// through [Forwarder.Serve] or [Forwarder.ServeConn], under the Port key
// their listeners share. Backends are the [upstream.Backend] values of an
// [upstream.Set]: the same state the HTTP path of package proxy picks
// from, so health checks, circuit breakers, Maglev tables and connection
// limits apply to streams as they do to requests.
//
// # Routing
//
// A TCP port has one listener, and its connections go to the oldest route
// attached to it. On a TLS port the forwarder first reads the client's
// ClientHello ([ReadClientHello]: at most Options.MaxHelloBytes, within
// Options.HelloTimeout, never more than 10 s) and takes its server name
// (SNI). The listener of the port whose Hostname matches the name most
// specifically takes the connection, and among its routes the one whose
// hostname matches most specifically, then the oldest: the hostname rules
// and precedence of package router, which serves HTTPRoutes, and no other
// implementation of them. A connection whose ClientHello is malformed,
// too large or too slow, or that no listener or route takes, is closed
// without any backend seeing it.
//
// A TLSPassthrough listener replays the ClientHello to the backend and
// then splices the bytes both ways untouched: the client verifies the
// backend's own certificate. A TLSTerminate listener completes the
// handshake with its own certificate and forwards the plaintext, or, to a
// backend whose upstream transport is TLS ([upstream.Backend.TLS]: a
// BackendTLSPolicy in Gateway API terms), opens a TLS connection of its
// own, verified by that configuration and without ALPN, and forwards the
// stream re-encrypted. Passthrough and TCP listeners never originate TLS.
//
// # Forwarding
//
// A route's backend references share its connections by weight; a
// reference to a backend the forwarder does not know takes its share and
// refuses it. An endpoint is picked by the backend's table (round robin by
// weight, or Maglev over the client address), skipping endpoints that fail
// health checks, whose breaker is open, or that hold
// ConnectionLimits.MaxPerEndpoint streams already; a connect (with the
// TLS handshake, when the forwarder re-encrypts) that fails or times out
// (Options.ConnectTimeout) counts against the endpoint's breaker and
// tries another, three endpoints at most.
//
// Bytes are copied both ways. When one side finishes sending (EOF), the
// forwarder half-closes the other side's write direction and keeps copying
// the other way, so protocols that rely on half-close work; an error on
// either side closes both. A stream on which no byte moves either way for
// Options.IdleTimeout (default an hour) is closed.
//
// # Configuration changes
//
// Apply never interrupts a stream whose route is still attached to its
// listener: it stays on the endpoint it reached, even when the route's
// backends change. A stream whose route was removed, renamed or detached
// from its listener is closed, since it is no longer configured traffic.
//
// # UDP
//
// A UDP listener's socket is handed to [Forwarder.ServePacket]. The
// datagrams of one client address (IP and port) are a session: the first
// picks the port's route (the oldest attached), a backend by weight and
// an endpoint as for a stream, and opens a socket of the session's own to
// it; the client's datagrams go out on that socket and whatever the
// endpoint sends back on it goes to the client from the listener's
// socket. A session ends after Options.UDPIdleTimeout (default 60 s)
// without a datagram either way, when the endpoint refuses a datagram
// (ICMP port unreachable, a breaker failure unless the endpoint had
// answered), at its next datagram once its endpoint has left its backend
// or fails its health checks (that datagram opens a new session), or when
// its route is no longer attached. Options.MaxUDPSessions (default
// 16384) caps the sessions open at once: each holds a socket, and past
// the cap a datagram that would open another is dropped and counted. A
// waiting session holds no buffer: a datagram is read into a pooled one
// when it is there.
//
// # Metrics
//
// rauta_stream_connections_total counts connections by listener, route and
// result; rauta_stream_bytes_total counts bytes by listener, route and
// direction; rauta_stream_active_connections is the number open.
// rauta_udp_sessions_total counts UDP sessions opened or refused by
// listener, route and result; rauta_udp_session_ends_total their ends by
// reason; rauta_udp_active_sessions the number open;
// rauta_udp_datagrams_total and rauta_udp_bytes_total the datagrams and
// payload bytes by direction; rauta_udp_dropped_datagrams_total the
// datagrams dropped by reason. Labels come from the configuration only.
package l4
