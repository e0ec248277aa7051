package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/proxy"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestTCPRouteStatusAndTraffic: against a real API server, a TCPRoute on
// a Gateway's TCP listener is read by the informers, its status is
// written (Accepted, ResolvedRefs), the listener lists TCPRoute in
// supportedKinds with the route attached, and a TCP stream reaches the
// Service's endpoint through the proxy.
func TestTCPRouteStatusAndTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.9", "tcp-backend")
	p := proxy.New(proxy.Options{Logger: quietLogger(), Streams: l4.Options{Dial: b.dial}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	e.gatewayClass()
	port := freePort(t)
	_, err := e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "tcp", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.class),
			Listeners:        []gatewayv1.Listener{{Name: "tcp", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.TCPProtocolType}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	e.service(e.ns, "echo", "10.213.0.9")
	r, err := e.gw.GatewayV1().TCPRoutes(e.ns).Create(e.ctx(), &gatewayv1.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: e.ns},
		Spec: gatewayv1.TCPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "tcp"}}},
			Rules: []gatewayv1.TCPRouteRule{{BackendRefs: []gatewayv1.BackendRef{{BackendObjectReference: gatewayv1.BackendObjectReference{
				Name: "echo", Port: ptr(gatewayv1.PortNumber(80)),
			}}}}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	e.start(nil, e.options(p))

	e.eventually("TCPRoute Accepted and ResolvedRefs", func() (bool, string) {
		got, err := e.gw.GatewayV1().TCPRoutes(e.ns).Get(e.ctx(), "echo", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ps := range got.Status.Parents {
			if string(ps.ControllerName) != e.ctrl {
				continue
			}
			if ok, msg := condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation); !ok {
				return false, msg
			}
			return condIs(ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", r.Generation)
		}
		return false, "no entry of ours"
	})
	e.eventually("TCP listener with TCPRoute attached", func() (bool, string) {
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "tcp", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(g.Status.Listeners) != 1 {
			return false, "no listener status"
		}
		l := g.Status.Listeners[0]
		if l.AttachedRoutes != 1 || len(l.SupportedKinds) != 1 || l.SupportedKinds[0].Kind != "TCPRoute" {
			return false, fmt.Sprintf("listener %+v", l)
		}
		return true, ""
	})
	e.eventually("a stream reaches the endpoint", func() (bool, string) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		body, _ := io.ReadAll(c)
		if len(body) < len("tcp-backend") || string(body[len(body)-len("tcp-backend"):]) != "tcp-backend" {
			return false, fmt.Sprintf("read %q", body)
		}
		return true, ""
	})
}

// TestTLSRouteTerminateBackendTLSPolicy: against a real API server, a
// TLSRoute on a Terminate listener whose Service a BackendTLSPolicy
// targets: the policy's CA ConfigMap is read, the policy is Accepted with
// the Gateway as ancestor, and a client's stream, decrypted at the
// gateway, reaches the endpoint re-encrypted, sent with the policy's
// hostname and verified against its CA.
func TestTLSRouteTerminateBackendTLSPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	beCrt, beKey := selfSigned(t, "backend", "backend.internal")
	beKP, err := tls.X509KeyPair(beCrt, beKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{beKP}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				b := make([]byte, 4)
				io.ReadFull(tc, b)
				fmt.Fprintf(tc, "sni=%s data=%s", tc.ConnectionState().ServerName, b)
			}()
		}
	}()
	b := backends{to: map[string]string{"10.213.0.10:8080": ln.Addr().String()}}
	p := proxy.New(proxy.Options{Logger: quietLogger(), Streams: l4.Options{Dial: b.dial}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	e.gatewayClass()
	const host = "term.example"
	crt, key := selfSigned(t, "front", host)
	_, err = e.kube.CoreV1().Secrets(e.ns).Create(e.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: e.ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}, metav1.CreateOptions{})
	e.must(err)
	_, err = e.kube.CoreV1().ConfigMaps(e.ns).Create(e.ctx(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "backend-ca", Namespace: e.ns},
		Data: map[string]string{"ca.crt": string(beCrt)}}, metav1.CreateOptions{})
	e.must(err)
	port := freePort(t)
	_, err = e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.class),
			Listeners: []gatewayv1.Listener{{Name: "term", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.TLSProtocolType, Hostname: ptr(gatewayv1.Hostname(host)),
				TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr(gatewayv1.TLSModeTerminate), CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}}}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	e.service(e.ns, "secure", "10.213.0.10")
	_, err = e.gw.GatewayV1().TLSRoutes(e.ns).Create(e.ctx(), &gatewayv1.TLSRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "secure", Namespace: e.ns},
		Spec: gatewayv1.TLSRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "tls"}}},
			Hostnames:       []gatewayv1.Hostname{host},
			Rules: []gatewayv1.TLSRouteRule{{BackendRefs: []gatewayv1.BackendRef{{BackendObjectReference: gatewayv1.BackendObjectReference{
				Name: "secure", Port: ptr(gatewayv1.PortNumber(80)),
			}}}}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	pol := policy(e.ns, "secure-tls", "secure", "backend-ca", "ConfigMap")
	pol.Spec.Validation.Hostname = "backend.internal"
	created, err := e.gw.GatewayV1().BackendTLSPolicies(e.ns).Create(e.ctx(), &pol, metav1.CreateOptions{})
	e.must(err)
	e.start(nil, e.options(p))

	e.eventually("BackendTLSPolicy Accepted with the Gateway as ancestor", func() (bool, string) {
		got, err := e.gw.GatewayV1().BackendTLSPolicies(e.ns).Get(e.ctx(), "secure-tls", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, a := range got.Status.Ancestors {
			if string(a.ControllerName) == e.ctrl && string(a.AncestorRef.Name) == "tls" {
				return condIs(a.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", created.Generation)
			}
		}
		return false, fmt.Sprintf("no ancestor entry of ours: %+v", got.Status.Ancestors)
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(crt)
	e.eventually("a stream reaches the endpoint re-encrypted", func() (bool, string) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{ServerName: host, RootCAs: roots})
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		io.WriteString(c, "ping")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		body, _ := io.ReadAll(c)
		if want := "sni=backend.internal data=ping"; string(body) != want {
			return false, fmt.Sprintf("read %q, want %q", body, want)
		}
		return true, ""
	})
}

// TestUDPRouteStatusAndTraffic: against a real API server, a UDPRoute on
// a Gateway's UDP listener is read by the informers, its status is
// written (Accepted, ResolvedRefs), the listener lists UDPRoute in
// supportedKinds with the route attached, and a datagram reaches the
// endpoint of the Service's UDP port (the slice's UDP port of that name,
// not the TCP one beside it) and its answer comes back.
func TestUDPRouteStatusAndTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	e.must(err)
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("udp-backend:"), buf[:n]...), from)
		}
	}()
	// The endpoint 10.213.0.19:5353 is the echo server on loopback.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network != "udp" || addr != "10.213.0.19:5353" {
			return nil, fmt.Errorf("test dialer: no %s backend %s", network, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, echo.LocalAddr().String())
	}
	p := proxy.New(proxy.Options{Logger: quietLogger(), Streams: l4.Options{Dial: dial}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	e.gatewayClass()
	port := freePort(t)
	_, err = e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "udp", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.class),
			Listeners:        []gatewayv1.Listener{{Name: "udp", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.UDPProtocolType}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	_, err = e.kube.CoreV1().Services(e.ns).Create(e.ctx(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: e.ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, TargetPort: intstr.FromString("dns"), Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", Port: 54, TargetPort: intstr.FromInt32(5454), Protocol: corev1.ProtocolTCP},
		}},
	}, metav1.CreateOptions{})
	e.must(err)
	_, err = e.kube.DiscoveryV1().EndpointSlices(e.ns).Create(e.ctx(), &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "dns-1", Namespace: e.ns, Labels: map[string]string{discoveryv1.LabelServiceName: "dns"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("dns-tcp"), Port: ptr(int32(5454)), Protocol: ptr(corev1.ProtocolTCP)},
			{Name: ptr("dns"), Port: ptr(int32(5353)), Protocol: ptr(corev1.ProtocolUDP)},
		},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.213.0.19"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
	}, metav1.CreateOptions{})
	e.must(err)
	r, err := e.gw.GatewayV1().UDPRoutes(e.ns).Create(e.ctx(), &gatewayv1.UDPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: e.ns},
		Spec: gatewayv1.UDPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "udp"}}},
			Rules: []gatewayv1.UDPRouteRule{{BackendRefs: []gatewayv1.BackendRef{{BackendObjectReference: gatewayv1.BackendObjectReference{
				Name: "dns", Port: ptr(gatewayv1.PortNumber(53)),
			}}}}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	e.start(nil, e.options(p))

	e.eventually("UDPRoute Accepted and ResolvedRefs", func() (bool, string) {
		got, err := e.gw.GatewayV1().UDPRoutes(e.ns).Get(e.ctx(), "dns", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ps := range got.Status.Parents {
			if string(ps.ControllerName) != e.ctrl {
				continue
			}
			if ok, msg := condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation); !ok {
				return false, msg
			}
			return condIs(ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", r.Generation)
		}
		return false, "no entry of ours"
	})
	e.eventually("UDP listener with UDPRoute attached", func() (bool, string) {
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "udp", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(g.Status.Listeners) != 1 {
			return false, "no listener status"
		}
		l := g.Status.Listeners[0]
		if l.AttachedRoutes != 1 || len(l.SupportedKinds) != 1 || l.SupportedKinds[0].Kind != "UDPRoute" {
			return false, fmt.Sprintf("listener %+v", l)
		}
		return true, ""
	})
	e.eventually("a datagram reaches the endpoint and is answered", func() (bool, string) {
		c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		c.Write([]byte("query"))
		c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return false, err.Error()
		}
		if got := string(buf[:n]); got != "udp-backend:query" {
			return false, fmt.Sprintf("read %q", got)
		}
		return true, ""
	})
}
