// Package conformance runs the upstream Gateway API conformance suite
// (sigs.k8s.io/gateway-api/conformance) against rauta on a docker-free local
// cluster. It is a module of its own, so that the SDK's go.mod does not carry
// the suite's dependencies.
//
// The pieces:
//
//   - cmd/localcluster: etcd, kube-apiserver and kube-controller-manager on
//     loopback (binaries from scripts/kube-binaries), with the Gateway API
//     CRDs of the experimental channel.
//   - nodeagent and cmd/nodeagent: the kubelet stand-in that runs the
//     suite's Pods (the echo server built from the conformance module's
//     source) in network namespaces with real Pod IPs.
//   - TestConformance (conformance_test.go): the suite itself, through its Go
//     API, with GATEWAY-HTTP and the profile of every other route kind
//     rauta claims (GATEWAY-GRPC, -TLS, -TCP, -UDP) in one run, and the
//     features rauta claims in its GatewayClass status.
//   - cmd/summarize: the short summary of a run next to its report.
//
// scripts/conformance at the repository root does all of it in one
// command and writes the report and the summary to docs/conformance/.
package conformance
