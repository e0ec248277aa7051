//go:build tools

// Package kube pins the Kubernetes commands that scripts/kube-binaries builds
// for rauta's test control plane (internal/testcluster): kube-apiserver and
// kube-controller-manager from k8s.io/kubernetes, with the staging modules
// replaced by their published v0 versions.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
