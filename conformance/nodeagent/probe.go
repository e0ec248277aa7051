package nodeagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probe runs a container's readiness probe for as long as the Pod runs,
// from the host to the Pod's address as the kubelet does. httpGet and
// tcpSocket probes are supported; any other kind never succeeds and its
// failure is logged.
func (rt *podRuntime) probe(ctx context.Context, c *container) {
	p := c.spec.ReadinessProbe
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	successes := int(max(p.SuccessThreshold, 1))
	failures := int(max(p.FailureThreshold, 3))
	var okRun, failRun int
	var running chan struct{}
	for {
		rt.mu.Lock()
		phase, started, ch := c.phase, c.startedAt, c.running
		var podIP string
		if rt.att != nil {
			podIP = rt.att.PodIP.String()
		}
		rt.mu.Unlock()
		if ch != running {
			// A new instance starts unready.
			running, okRun, failRun = ch, 0, 0
		}
		delay := time.Duration(p.InitialDelaySeconds) * time.Second
		if phase == containerRunning && time.Since(started) >= delay && podIP != "" {
			err := probeOnce(ctx, p, &c.spec, podIP, timeout)
			rt.mu.Lock()
			before := c.probeReady
			if err == nil {
				okRun, failRun = okRun+1, 0
				if okRun >= successes {
					c.probeReady = true
				}
			} else {
				okRun, failRun = 0, failRun+1
				if failRun >= failures {
					c.probeReady = false
				}
			}
			changed := before != c.probeReady
			rt.mu.Unlock()
			if changed {
				rt.log.Info("readiness", "container", c.spec.Name, "ready", !before, "err", err)
				rt.notify()
			}
		}
		// Probe soon after a start, then at the probe's period.
		wait := period
		if phase != containerRunning || !c.probeReadySnapshot(rt) {
			wait = min(period, 500*time.Millisecond)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (c *container) probeReadySnapshot(rt *podRuntime) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return c.probeReady
}

func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// probeOnce runs one probe attempt.
func probeOnce(ctx context.Context, p *corev1.Probe, c *corev1.Container, podIP string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return probeHTTP(ctx, p.HTTPGet, c, podIP)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return fmt.Errorf("probe of container %s: only httpGet and tcpSocket probes are supported", c.Name)
}

func probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) error {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	ref, err := url.Parse(g.Path)
	if err != nil {
		return fmt.Errorf("probe path %q: %w", g.Path, err)
	}
	u = u.ResolveReference(ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/rauta-nodeagent")
	for _, h := range g.HTTPHeaders {
		if http.CanonicalHeaderKey(h.Name) == "Host" {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	tr := &http.Transport{
		// The kubelet does not verify the certificates of probed Pods.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("probe %s: status %d", u, resp.StatusCode)
	}
	return nil
}

// resolvePort resolves a probe port, by number or by the name of one of the
// container's ports.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d: out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: no container port has that name", p.StrVal)
}
