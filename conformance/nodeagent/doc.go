// Package nodeagent stands in for a kubelet so that a docker-free cluster
// (etcd, kube-apiserver and kube-controller-manager on loopback) can run the
// Gateway API conformance suite's backends for real.
//
// An Agent registers a Node, binds every unscheduled Pod that names the
// default scheduler to it, and runs each Pod bound to it:
//
//   - Network: a network namespace per Pod (ip netns), joined to the host by
//     a veth pair, with one /30 of the Pod CIDR (default 10.244.0.0/16): the
//     host end is the Pod's gateway, the Pod end (eth0) its Pod IP. The host
//     reaches every Pod IP through the connected route of its /30, so a
//     gateway running on the host dials Pods directly. The namespace and
//     the pair are removed when the Pod is deleted, when the agent exits,
//     and (for remains of a run that was killed) when an agent with the same
//     link prefix starts.
//   - Images: no image is pulled. Config.Images maps an image repository
//     (tag ignored) to a local program that plays its entrypoint, e.g. the
//     conformance echo server built from the gateway-api module's source.
//     The program runs in the Pod's namespace (ip netns exec) in its own
//     process group, killed with the agent (PR_SET_PDEATHSIG).
//   - Environment and volumes: env and envFrom are resolved as the kubelet
//     does (values, downward API fields, Secret and ConfigMap keys, $(VAR)
//     references). Volumes (emptyDir, hostPath, secret, configMap,
//     downwardAPI, projected with service account tokens) are written to a
//     directory per Pod. There is no mount namespace: values of env and
//     args that name a path inside a volumeMount are rewritten to the
//     volume's directory, which is how the echo server finds its TLS files.
//   - Lifecycle: init containers in order, then the containers, restarted
//     per restartPolicy with the kubelet's doubling back-off; httpGet and
//     tcpSocket readiness probes from the host; graceful deletion (SIGTERM
//     to the process group, SIGKILL after the grace period, then the Pod
//     object is deleted for good, as the kubelet does).
//   - Status: phase, conditions (PodReadyToStartContainers, Initialized,
//     ContainersReady, Ready, with readiness gates), hostIP(s), podIP(s),
//     startTime and containerStatuses, written only when they change, so the
//     EndpointSlice controller publishes the Pods as endpoints.
//   - Logs: each container instance's output is kept in the CRI log format
//     and served over HTTPS at /containerLogs/{namespace}/{pod}/{container}
//     (sinceTime, sinceSeconds, timestamps, tailLines, limitBytes, follow,
//     previous), the endpoint the API server's pods/log subresource calls;
//     its port is published in the Node's status.daemonEndpoints.
//
// Not done, as the conformance suite needs none of it: liveness and
// startup probes, exec probes, resource limits, container exec/attach/
// port-forward, image pulls, and refreshing Secret volumes after start.
//
// DNSServer is the stand-in for the CoreDNS Pod of the suite's base
// manifests (see its documentation). The agent must run as root.
package nodeagent
