package gatewayapi

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// testOptions is the "Options" pseudo-document of a golden input.
type testOptions struct {
	ControllerName string `json:"controllerName"`
	Address        string `json:"address"`
	AddressPool    string `json:"addressPool"`
}

// decodeResources reads a multi-document YAML stream into Resources. A
// document of kind "Options" sets the translation options. The
// placeholders "${CERT}", "${KEY}" and "${CA}" are replaced by the PEM files
// of testdata, quoted.
func decodeResources(data []byte) (*Resources, Options, error) {
	for _, ph := range []struct{ token, file string }{
		{`"${CERT}"`, "cert.pem"}, {`"${KEY}"`, "key.pem"}, {`"${CA}"`, "ca.pem"},
	} {
		if !bytes.Contains(data, []byte(ph.token)) {
			continue
		}
		pem, err := os.ReadFile(filepath.Join("testdata", ph.file))
		if err != nil {
			return nil, Options{}, err
		}
		data = bytes.ReplaceAll(data, []byte(ph.token), []byte(strconv.Quote(string(pem))))
	}
	res := &Resources{}
	var opts Options
	for i, doc := range splitDocuments(data) {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, opts, fmt.Errorf("document %d: %w", i, err)
		}
		var err error
		switch meta.Kind {
		case "":
			continue
		case "Options":
			var o testOptions
			if err = yaml.UnmarshalStrict(doc, &struct {
				Kind string `json:"kind"`
				*testOptions
			}{testOptions: &o}); err == nil {
				opts.ControllerName, opts.Address = o.ControllerName, o.Address
				if o.AddressPool != "" {
					opts.AddressPool, err = netip.ParsePrefix(o.AddressPool)
				}
			}
		case "GatewayClass":
			err = appendDoc(doc, &res.GatewayClasses)
		case "Gateway":
			err = appendDoc(doc, &res.Gateways)
		case "ListenerSet":
			err = appendDoc(doc, &res.ListenerSets)
		case "HTTPRoute":
			err = appendDoc(doc, &res.HTTPRoutes)
		case "TLSRoute":
			err = appendDoc(doc, &res.TLSRoutes)
		case "TCPRoute":
			err = appendDoc(doc, &res.TCPRoutes)
		case "UDPRoute":
			err = appendDoc(doc, &res.UDPRoutes)
		case "GRPCRoute":
			err = appendDoc(doc, &res.GRPCRoutes)
		case "ReferenceGrant":
			err = appendDoc(doc, &res.ReferenceGrants)
		case "BackendTLSPolicy":
			err = appendDoc(doc, &res.BackendTLSPolicies)
		case "XBackendTrafficPolicy":
			err = appendDoc(doc, &res.XBackendTrafficPolicies)
		case "BackendPolicy":
			err = appendDoc(doc, &res.BackendPolicies)
		case "TrafficPolicy":
			err = appendDoc(doc, &res.TrafficPolicies)
		case "Service":
			err = appendDoc(doc, &res.Services)
		case "EndpointSlice":
			err = appendDoc(doc, &res.EndpointSlices)
		case "Secret":
			err = appendDoc(doc, &res.Secrets)
		case "ConfigMap":
			err = appendDoc(doc, &res.ConfigMaps)
		case "Namespace":
			err = appendDoc(doc, &res.Namespaces)
		default:
			err = fmt.Errorf("unknown kind %q", meta.Kind)
		}
		if err != nil {
			return nil, opts, fmt.Errorf("document %d (%s): %w", i, meta.Kind, err)
		}
	}
	return res, opts, nil
}

// appendDoc decodes doc strictly and appends it to list.
func appendDoc[T any](doc []byte, list *[]T) error {
	var v T
	if err := yaml.UnmarshalStrict(doc, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// splitDocuments splits a YAML stream at "---" lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []string
	for line := range strings.Lines(string(data)) {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			docs = append(docs, []byte(strings.Join(cur, "")))
			cur = cur[:0]
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, []byte(strings.Join(cur, "")))
}
