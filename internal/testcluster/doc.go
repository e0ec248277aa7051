// Package testcluster runs a real Kubernetes control plane for tests: etcd
// and kube-apiserver started as child processes on 127.0.0.1, with the
// Gateway API CRDs of the gateway-api module this repository requires
// installed, and a rest.Config (and kubeconfig file) with system:masters
// rights handed to the test.
//
// The binaries are built from the Go module proxy by scripts/kube-binaries
// into a cache outside the repository:
//
//	${XDG_CACHE_HOME:-$HOME/.cache}/rauta/kube/<kubernetes>-etcd-<etcd>/
//
// or into the directory named by the environment variable
// RAUTA_KUBE_BINARIES. [Binaries] finds them. When they are absent and
// RAUTA_KUBE_BINARIES is unset, [ForTest] skips the test with a message
// saying how to build them; when RAUTA_KUBE_BINARIES is set (scripts/test
// sets it after running scripts/kube-binaries), missing binaries fail the
// test instead, so CI never skips silently.
//
// The control plane has no scheduler or kubelet, and by default no
// kube-controller-manager: objects are stored and validated (CRD schemas
// and CEL rules included) and RBAC is enforced, but nothing reconciles them.
// Options.ControllerManager adds kube-controller-manager with the
// controllers that need no kubelet (namespace deletion, garbage
// collection, Deployments and ReplicaSets, EndpointSlices); Pods are then
// created but never run. The ServiceAccount admission plugin is disabled (no token
// controller) and the endpoint reconciler is off (loopback is not a valid
// Service endpoint). EndpointSlices must therefore be written by the test,
// and their addresses must not be loopback addresses: tests use addresses
// from a private range that they never dial directly.
//
// Processes are stopped by their PID at cleanup (SIGTERM, then SIGKILL), and
// they are started with a parent-death signal so that they do not outlive a
// test binary that crashes.
package testcluster
