// Package filesource runs a gateway from YAML files, with no cluster: it
// reads Gateway API objects and the Services and endpoints they refer to
// from a file or a directory, hands them to the translator (package
// gatewayapi) and applies the result to a proxy.Proxy, again whenever the
// files change.
//
// # Files
//
// [Load] reads one file, or the files of a directory whose names end in
// .yaml, .yml or .json (in lexical order, not recursively, skipping names
// that start with a dot and following symbolic links, so that a ConfigMap
// mounted as a volume works). A YAML file holds any number of documents
// separated by "---" lines, as `kubectl apply -f` takes them; a JSON file
// holds one object. Each object is one of:
//
//	gateway.networking.k8s.io/v1       GatewayClass, Gateway, ListenerSet, HTTPRoute,
//	                                   GRPCRoute, TLSRoute, TCPRoute, UDPRoute,
//	                                   ReferenceGrant, BackendTLSPolicy
//	gateway.networking.k8s.io/v1beta1  GatewayClass, Gateway, HTTPRoute, ReferenceGrant
//	gateway.networking.k8s.io/v1alpha2 TLSRoute, TCPRoute, UDPRoute (v1alpha3: TLSRoute)
//	v1                                 Service, Secret, ConfigMap, Namespace, and List
//	                                   (whose items are any of these)
//	discovery.k8s.io/v1                EndpointSlice
//	gateway.networking.x-k8s.io/v1alpha1  XBackendTrafficPolicy
//	gateway.rauta.io/v1alpha1          BackendPolicy, TrafficPolicy (rauta's policies,
//	                                   package apis/v1alpha1)
//
// Decoding is strict: an unknown field, a field given twice, a value of the
// wrong type, an unsupported kind or an object defined twice is an error.
// A document of a Gateway API kind rauta does not serve (XMesh, say) is
// not an error: it is kept in Resources.NotServed, and [Summarize] reports
// it as ignored, not served, while the other documents load.
// Every error is reported, each as an [*Error] that names the file, the
// document and the line it starts on, the object and the field:
//
//	gateway.yaml: document 2 (line 14): HTTPRoute default/web: spec.rules[0].matches[0].path.valeu: unknown field
//
// The defaults the API server would apply are applied: an object without a
// namespace is in "default", metadata.generation is 1 when not given, and a
// Secret's stringData is merged into its data (so a certificate can be
// pasted as PEM text). The translator checks everything else and reports it
// in the objects' status.
//
// # Endpoints
//
// In a cluster, the EndpointSlice controller writes the endpoints of
// Services. Without one, write them as EndpointSlice documents of the same
// shape: the label kubernetes.io/service-name names the Service, the
// ports are named after the Service's ports, and only ready endpoints
// (conditions.ready absent or true) receive traffic. Any address reachable
// from the gateway works, loopback included:
//
//	apiVersion: v1
//	kind: Service
//	metadata:
//	  name: echo
//	spec:
//	  ports:
//	  - name: http
//	    port: 80
//	    targetPort: 9001
//	---
//	apiVersion: discovery.k8s.io/v1
//	kind: EndpointSlice
//	metadata:
//	  name: echo
//	  labels:
//	    kubernetes.io/service-name: echo
//	addressType: IPv4
//	ports:
//	- name: http
//	  port: 9001
//	endpoints:
//	- addresses: ["127.0.0.1", "127.0.0.2"]
//	- addresses: ["127.0.0.3"]
//	  conditions:
//	    ready: false
//
// # Watching and serving
//
// A [Watcher] polls the files (a digest of their names and contents, every
// second by default), debounces changes (the files must stay unchanged for
// a short hold-off, but a change waits no longer than a maximum delay) and
// calls back with the new objects, or with the error when they fail to
// load.
//
// A [Source] ties a Watcher to the translator and a proxy: every load is
// translated and applied, the status of every object is logged (accepted,
// or why not; see [Summarize]) and kept in a [Report]. Files that fail to
// load change nothing: the previous configuration keeps serving and the
// error is logged and reported.
//
// A Source is an admin.Source: a complete standalone gateway, as
// `rauta serve --config PATH` and the quickstart example run it, is a
// proxy.Proxy, a Source and admin.Run, which adds the admin listener
// (/readyz follows [Source.Ready], /debug/status shows [Source.Report]) and
// the graceful shutdown.
//
// # Resources from Go
//
// A Source without a Path reads no files: a Go program builds its own
// gatewayapi.Resources (every kind it holds, policies and route kinds
// included) and hands them to [Source.Apply], whenever they change. They are
// translated, applied and reported exactly as files are; see the example
// of [Source.Apply].
package filesource
