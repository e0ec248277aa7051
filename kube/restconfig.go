package kube

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the configuration to reach a cluster: the kubeconfig
// file at path when path is not empty; otherwise the file named by
// $KUBECONFIG or ~/.kube/config when one exists, and else the in-cluster
// configuration of a Pod (its service account).
func RESTConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if path != "" {
			return nil, fmt.Errorf("kube: kubeconfig %s: %w", path, err)
		}
		return nil, fmt.Errorf("kube: no kubeconfig and not in a cluster: %w", err)
	}
	return cfg, nil
}
