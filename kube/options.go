package kube

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
)

// Defaults of [Options].
const (
	// DefaultHoldOff is the quiet time after a change before a rebuild.
	DefaultHoldOff = 100 * time.Millisecond
	// DefaultMaxDelay bounds the time from a change to its rebuild under
	// a steady stream of changes.
	DefaultMaxDelay = time.Second
	// DefaultEndpointsHoldOff is the time from an EndpointSlice change to
	// the endpoint update of its backends.
	DefaultEndpointsHoldOff = 10 * time.Millisecond
	// DefaultLeaseNamespace is the namespace of the status writer's Lease.
	DefaultLeaseNamespace = "rauta-system"
	// DefaultLeaseDuration, DefaultRenewDeadline and DefaultRetryPeriod
	// are the leader-election timings (those of kube-controller-manager).
	DefaultLeaseDuration = 15 * time.Second
	// DefaultRenewDeadline is how long the leader keeps trying to renew.
	DefaultRenewDeadline = 10 * time.Second
	// DefaultRetryPeriod is the time between attempts to acquire or renew.
	DefaultRetryPeriod = 2 * time.Second
	// DefaultStatusWorkers is the number of concurrent status writers.
	DefaultStatusWorkers = 2
	// DefaultPolicyDiscoveryInterval is the time between two checks for
	// the CRD of a policy kind that was not installed.
	DefaultPolicyDiscoveryInterval = 30 * time.Second
)

// Options configure a [Controller]. Proxy is required; the zero value of
// every other field is usable.
type Options struct {
	// Proxy serves the translated configuration; required.
	Proxy *proxy.Proxy
	// Translate are the translator's options: the controllerName of the
	// GatewayClasses handled (default gatewayapi.DefaultControllerName)
	// and the addresses listeners bind.
	Translate gatewayapi.Options
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger

	// HoldOff is the quiet time after a change before the configuration
	// is rebuilt; zero means DefaultHoldOff.
	HoldOff time.Duration
	// MaxDelay bounds the time from a change to its rebuild; zero means
	// DefaultMaxDelay.
	MaxDelay time.Duration
	// EndpointsHoldOff is the time from an EndpointSlice change to the
	// endpoint update of its backends (the fast path, which does not
	// rebuild); zero means DefaultEndpointsHoldOff.
	EndpointsHoldOff time.Duration
	// PolicyDiscoveryInterval is the time between two checks (through
	// discovery) for a policy kind (BackendPolicy, TrafficPolicy,
	// XBackendTrafficPolicy) whose CRD was not installed; once it is, the
	// controller watches it. Zero means DefaultPolicyDiscoveryInterval.
	PolicyDiscoveryInterval time.Duration

	// DisableStatus turns the status writer off: the controller serves
	// traffic but never campaigns for the Lease, writes status or records
	// Events.
	DisableStatus bool
	// LeaseNamespace is the namespace of the Lease electing the status
	// writer; empty means DefaultLeaseNamespace. It must exist.
	LeaseNamespace string
	// LeaseName is the Lease's name; empty means the controllerName with
	// every character other than [a-z0-9.-] replaced by "-" (so
	// "rauta.io/gateway-controller" gives "rauta.io-gateway-controller").
	LeaseName string
	// Identity names this replica in the Leases and in Events; empty means
	// the host name followed by a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are the leader
	// election's timings; zero means the Default values.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader tries to renew before it steps
	// down.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew.
	RetryPeriod time.Duration
	// StatusWorkers is the number of status updates in flight; zero means
	// DefaultStatusWorkers.
	StatusWorkers int

	// DisableReplicaCount turns the replica count off: the controller
	// keeps no Lease of its own, OnReplicas is never called, and each
	// replica enforces the whole of every rate limit. Otherwise each
	// replica keeps a Lease in LeaseNamespace, labelled ReplicaOfLabel
	// with LeaseName, and counts the live Leases of that label: N, the
	// number of replicas a policy's rate limits are divided by (see
	// docs/replicas.md).
	DisableReplicaCount bool
	// ReplicaLeaseDuration is how long the replica's own Lease counts
	// without renewal (its leaseDurationSeconds, rounded up to whole
	// seconds; at least 1s): a replica killed without warning stops
	// being counted within it. Zero means DefaultReplicaLeaseDuration.
	ReplicaLeaseDuration time.Duration
	// ReplicaRenewPeriod is the time between renewals of the own Lease,
	// at most half of ReplicaLeaseDuration; zero means
	// DefaultReplicaRenewPeriod.
	ReplicaRenewPeriod time.Duration
	// OnReplicas is called with the number of replicas serving whenever
	// it changes (first once the count is known); nil means the proxy's
	// [proxy.Proxy.SetReplicas], which divides the rate limits by it.
	OnReplicas func(n int)
	// Registerer receives the controller's Prometheus metrics
	// (rauta_replicas); nil means the proxy's own registry
	// (proxy.Proxy.Registry), or none when the proxy registers its
	// metrics elsewhere.
	Registerer prometheus.Registerer
}

// withDefaults returns opts with every zero value replaced.
func (o Options) withDefaults() Options {
	o.Translate.ControllerName = cmp.Or(o.Translate.ControllerName, gatewayapi.DefaultControllerName)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.HoldOff = cmp.Or(o.HoldOff, DefaultHoldOff)
	o.MaxDelay = cmp.Or(o.MaxDelay, DefaultMaxDelay)
	o.EndpointsHoldOff = cmp.Or(o.EndpointsHoldOff, DefaultEndpointsHoldOff)
	o.PolicyDiscoveryInterval = cmp.Or(o.PolicyDiscoveryInterval, DefaultPolicyDiscoveryInterval)
	o.LeaseNamespace = cmp.Or(o.LeaseNamespace, DefaultLeaseNamespace)
	o.LeaseName = cmp.Or(o.LeaseName, leaseName(o.Translate.ControllerName))
	if o.Identity == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.Identity = cmp.Or(host, "rauta") + "_" + hex.EncodeToString(b[:])
	}
	o.LeaseDuration = cmp.Or(o.LeaseDuration, DefaultLeaseDuration)
	o.RenewDeadline = cmp.Or(o.RenewDeadline, DefaultRenewDeadline)
	o.RetryPeriod = cmp.Or(o.RetryPeriod, DefaultRetryPeriod)
	o.StatusWorkers = cmp.Or(o.StatusWorkers, DefaultStatusWorkers)
	o.ReplicaLeaseDuration = cmp.Or(o.ReplicaLeaseDuration, DefaultReplicaLeaseDuration)
	o.ReplicaRenewPeriod = cmp.Or(o.ReplicaRenewPeriod, DefaultReplicaRenewPeriod)
	return o
}

// leaseName derives a Lease name from a controllerName.
func leaseName(controller string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, controller)
	s = strings.Trim(s, ".-")
	if len(s) > 253 {
		s = strings.TrimRight(s[:253], ".-")
	}
	return cmp.Or(s, "rauta")
}
