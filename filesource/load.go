package filesource

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayv1alpha3 "sigs.k8s.io/gateway-api/apis/v1alpha3"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/gatewayapi"
)

// maxErrors bounds the number of errors Load reports.
const maxErrors = 50

// Load reads the objects of path into a Resources bundle. path is a file or
// a directory; of a directory, the files whose names end in .yaml, .yml or
// .json are read in lexical order (not recursively; names starting with a
// dot are skipped, symbolic links are followed). See the package
// documentation for the kinds read and the defaults applied.
//
// Every problem found is reported, each as an *[Error] naming the file,
// document, line, object and field, joined with errors.Join; on error the
// Resources are nil.
func Load(path string) (*gatewayapi.Resources, error) {
	files, err := readTree(path)
	if err != nil {
		return nil, err
	}
	return parse(files)
}

// file is the content of one file read.
type file struct {
	name string
	data []byte
}

// readTree reads the file path or the configuration files of the
// directory path.
func readTree(path string) ([]file, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("filesource: %w", err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("filesource: %w", err)
		}
		return []file{{name: path, data: data}}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("filesource: %w", err)
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !isConfigFile(name) {
			continue
		}
		full := filepath.Join(path, name)
		st, err := os.Stat(full) // follows symbolic links (ConfigMap volumes)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir, or a dangling link
			}
			return nil, fmt.Errorf("filesource: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return nil, fmt.Errorf("filesource: %w", err)
		}
		files = append(files, file{name: full, data: data})
	}
	return files, nil
}

func isConfigFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// hashFiles returns a digest of the names and contents of files.
func hashFiles(files []file) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.name)))
		h.Write(n[:])
		h.Write([]byte(f.name))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// document is one YAML document of a file.
type document struct {
	index int    // 1-based among non-empty documents
	line  int    // first line with content
	first int    // line of data's first line
	data  []byte // the document's text
}

// splitDocuments splits a multi-document YAML stream at "---" lines. A
// JSON file is one document. Documents holding only blank lines and
// comments are dropped.
func splitDocuments(name string, data []byte) []document {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		line := firstContentLine(data, false)
		if line == 0 {
			return nil
		}
		return []document{{index: 1, line: line, first: 1, data: data}}
	}
	var docs []document
	start, startLine := 0, 1
	flush := func(end int) {
		chunk := data[start:end]
		if l := firstContentLine(chunk, true); l > 0 {
			docs = append(docs, document{index: len(docs) + 1, line: startLine + l - 1, first: startLine, data: chunk})
		}
	}
	lineNo := 1
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		if isSeparator(data[off:next]) {
			flush(off)
			start, startLine = next, lineNo+1
		}
		off = next
		lineNo++
	}
	flush(len(data))
	return docs
}

// isSeparator reports whether line starts or ends a YAML document.
func isSeparator(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	for _, m := range [][]byte{[]byte("---"), []byte("...")} {
		if bytes.HasPrefix(line, m) {
			rest := line[len(m):]
			if len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' {
				return true
			}
		}
	}
	return false
}

// firstContentLine returns the 1-based line of the first line of data that
// is not blank (nor, for YAML, a comment or a directive), or 0.
func firstContentLine(data []byte, yamlComments bool) int {
	for n, line := range bytes.Split(data, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || yamlComments && (t[0] == '#' || t[0] == '%') {
			continue
		}
		return n + 1
	}
	return 0
}

// header is the part of an object read before its kind is known.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// namespace returns the object's namespace with the default applied, or ""
// for a kind that is not namespaced.
func (h *header) namespace(kind kindInfo) string {
	switch {
	case !kind.namespaced:
		return ""
	case h.Metadata.Namespace == "":
		return metav1.NamespaceDefault
	}
	return h.Metadata.Namespace
}

// describe names the object for errors: "Kind namespace/name".
func (h *header) describe() string {
	if h.Kind == "" || h.Metadata.Name == "" {
		return h.Kind
	}
	kind, ok := lookupKind(h.APIVersion, h.Kind)
	if ns := h.namespace(kind); ok && ns != "" {
		return h.Kind + " " + ns + "/" + h.Metadata.Name
	}
	return h.Kind + " " + h.Metadata.Name
}

// objectKey identifies an object for duplicate detection.
type objectKey struct{ kind, namespace, name string }

// parser accumulates the objects and errors of the files read.
type parser struct {
	res  gatewayapi.Resources
	errs []error
	seen map[objectKey]string // where each object was defined
	// scheme knows the kinds of the Gateway API module; built when a
	// document's kind is not one lookupKind knows.
	scheme *runtime.Scheme
}

// parse decodes files into Resources.
func parse(files []file) (*gatewayapi.Resources, error) {
	p := &parser{seen: make(map[objectKey]string)}
	for _, f := range files {
		for _, d := range splitDocuments(f.name, f.data) {
			if len(p.errs) >= maxErrors {
				break
			}
			p.document(f.name, d)
		}
	}
	if len(p.errs) > 0 {
		if len(p.errs) >= maxErrors {
			p.errs = append(p.errs, fmt.Errorf("filesource: too many errors, stopped after %d", maxErrors))
		}
		return nil, errors.Join(p.errs...)
	}
	return &p.res, nil
}

// yamlLine finds the line number in a YAML error message.
var yamlLine = regexp.MustCompile(`line (\d+)`)

func (p *parser) document(name string, d document) {
	base := Error{File: name, Document: d.index, Line: d.line, Item: -1}
	// fileLines makes the YAML parser's line numbers, relative to the
	// document, lines of the file.
	fileLines := func(msg string) string {
		return yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
			n, err := strconv.Atoi(s[len("line "):])
			if err != nil {
				return s
			}
			return "line " + strconv.Itoa(d.first+n-1)
		})
	}
	js, err := yaml.YAMLToJSONStrict(d.data)
	if err != nil {
		// The strict conversion fails on syntax errors and on keys given
		// twice. Report the duplicates one by one and go on with the
		// lenient conversion to find the other problems of the document.
		lenient, lerr := yaml.YAMLToJSON(d.data)
		dups := duplicateKey.FindAllStringSubmatch(err.Error(), -1)
		if lerr != nil || len(dups) == 0 {
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			msg = strings.TrimPrefix(msg, "yaml: ")
			e := base
			e.Err = fmt.Errorf("%w: %s", ErrSyntax, fileLines(msg))
			p.errs = append(p.errs, &e)
			return
		}
		var h header
		_ = json.Unmarshal(lenient, &h) // only to name the object
		for _, m := range dups {
			e := base
			e.Object = h.describe()
			e.Field = m[2]
			e.Err = fmt.Errorf("%w (%s)", ErrDuplicateField, fileLines("line "+m[1]))
			p.errs = append(p.errs, &e)
		}
		js = lenient
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return // a document of only an explicit null
	}
	p.object(base, js, fmt.Sprintf("%s document %d (line %d)", name, d.index, d.line))
}

// duplicateKey finds the keys given twice in an error of the strict YAML
// parser.
var duplicateKey = regexp.MustCompile(`line (\d+): key "([^"]*)" already set in map`)

// object decodes one object, or the items of a List.
func (p *parser) object(base Error, js []byte, where string) {
	fail := func(obj, field string, err error) {
		e := base
		e.Object, e.Field, e.Err = obj, field, err
		p.errs = append(p.errs, &e)
	}
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			fail("", te.Field, fmt.Errorf("%w: want %s, got a JSON %s", ErrInvalidValue, te.Type, te.Value))
			return
		}
		fail("", "", fmt.Errorf("%w: not an object: %v", ErrInvalidValue, err))
		return
	}
	if h.APIVersion == "" {
		fail("", "apiVersion", fmt.Errorf("%w: required", ErrInvalidValue))
		return
	}
	if h.Kind == "" {
		fail("", "kind", fmt.Errorf("%w: required", ErrInvalidValue))
		return
	}
	if h.APIVersion == "v1" && h.Kind == "List" {
		if base.Item >= 0 {
			fail("", "kind", fmt.Errorf("%w: a List inside a List", ErrUnsupportedKind))
			return
		}
		var list struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   json.RawMessage   `json:"metadata,omitempty"`
			Items      []json.RawMessage `json:"items"`
		}
		strict, err := kjson.UnmarshalStrict(js, &list)
		if err != nil {
			fail("List", "", decodeError(err))
			return
		}
		for _, se := range strict {
			field, err := strictError(se)
			fail("List", field, err)
		}
		for i, item := range list.Items {
			b := base
			b.Item = i
			p.object(b, item, fmt.Sprintf("%s items[%d]", where, i))
		}
		return
	}
	kind, ok := lookupKind(h.APIVersion, h.Kind)
	if !ok && p.gatewayAPIKind(h.APIVersion, h.Kind) {
		// A kind of the Gateway API that rauta does not serve: kept to be
		// reported, and the other documents load.
		var m metav1.PartialObjectMetadata
		if err := json.Unmarshal(js, &m); err != nil {
			fail(h.Kind, "metadata", decodeError(err))
			return
		}
		if m.Namespace == "" {
			m.Namespace = metav1.NamespaceDefault
		}
		p.res.NotServed = append(p.res.NotServed, m)
		return
	}
	if !ok {
		fail("", "", fmt.Errorf("%w: %s %s (supported: %s)", ErrUnsupportedKind, h.APIVersion, h.Kind, supportedKinds))
		return
	}
	ns := h.namespace(kind)
	obj := h.describe()
	if h.Metadata.Name == "" {
		fail(h.Kind, "metadata.name", fmt.Errorf("%w: required", ErrInvalidValue))
		return
	}
	bad := false
	for _, msg := range validation.IsDNS1123Subdomain(h.Metadata.Name) {
		fail(obj, "metadata.name", fmt.Errorf("%w: %s", ErrInvalidValue, msg))
		bad = true
	}
	if kind.namespaced {
		for _, msg := range validation.IsDNS1123Label(ns) {
			fail(obj, "metadata.namespace", fmt.Errorf("%w: %s", ErrInvalidValue, msg))
			bad = true
		}
	}
	if bad {
		return
	}
	key := objectKey{kind: kind.group + "/" + h.Kind, namespace: ns, name: h.Metadata.Name}
	if prev, dup := p.seen[key]; dup {
		fail(obj, "", fmt.Errorf("%w: first in %s", ErrDuplicateObject, prev))
		return
	}
	p.seen[key] = where
	errs := kind.decode(&p.res, js, ns)
	for _, err := range errs {
		field, e := strictError(err)
		fail(obj, field, e)
	}
}

// strictError splits a decoding error into its field path and a wrapped
// sentinel error.
func strictError(err error) (string, error) {
	var fe kjson.FieldError
	if errors.As(err, &fe) {
		path := fe.FieldPath()
		switch {
		case strings.HasPrefix(err.Error(), "unknown field"):
			return path, ErrUnknownField
		case strings.HasPrefix(err.Error(), "duplicate field"):
			return path, ErrDuplicateField
		}
		return path, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	var fieldErr *fieldError
	if errors.As(err, &fieldErr) {
		return fieldErr.field, fieldErr.err
	}
	if errors.Is(err, ErrInvalidValue) {
		return "", err
	}
	return "", decodeError(err)
}

// fieldError is a validation error of one field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// typeErrorField finds the field in an error of encoding/json (as forked
// by sigs.k8s.io/json) about a value of the wrong type.
var typeErrorField = regexp.MustCompile(`^json: cannot unmarshal (\S+) into Go struct field \S+?\.(\S+) of type (\S+)$`)

// decodeError turns an error of the JSON decoder into one that wraps
// ErrInvalidValue.
func decodeError(err error) error {
	msg := err.Error()
	if m := typeErrorField.FindStringSubmatch(msg); m != nil {
		return &fieldError{field: m[2], err: fmt.Errorf("%w: want %s, got a JSON %s", ErrInvalidValue, m[3], m[1])}
	}
	msg = strings.TrimPrefix(msg, "json: ")
	return fmt.Errorf("%w: %s", ErrInvalidValue, msg)
}

// kindInfo says how to decode one apiVersion and kind.
type kindInfo struct {
	group      string
	namespaced bool
	decode     func(res *gatewayapi.Resources, js []byte, namespace string) []error
}

const supportedKinds = "gateway.networking.k8s.io/v1 GatewayClass, Gateway, ListenerSet, HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute, ReferenceGrant, BackendTLSPolicy " +
	"(v1beta1 for GatewayClass, Gateway, HTTPRoute, ReferenceGrant; v1alpha2 for TLSRoute, TCPRoute and UDPRoute; v1alpha3 for TLSRoute); " +
	"gateway.networking.x-k8s.io/v1alpha1 XBackendTrafficPolicy; gateway.rauta.io/v1alpha1 BackendPolicy, TrafficPolicy; " +
	"v1 Service, Secret, ConfigMap, Namespace, List; discovery.k8s.io/v1 EndpointSlice"

// rautaGroup is the API group of rauta's own kinds (package
// apis/v1alpha1).
const rautaGroup = "gateway.rauta.io"

func lookupKind(apiVersion, kind string) (kindInfo, bool) {
	const gw = "gateway.networking.k8s.io"
	switch apiVersion {
	case gw + "/v1", gw + "/v1beta1":
		beta := apiVersion == gw+"/v1beta1"
		switch kind {
		case "GatewayClass":
			return kindInfo{gw, false, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.GatewayClass { return &r.GatewayClasses })}, true
		case "Gateway":
			return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.Gateway { return &r.Gateways })}, true
		case "HTTPRoute":
			return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.HTTPRoute { return &r.HTTPRoutes })}, true
		case "GRPCRoute":
			if !beta {
				return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.GRPCRoute { return &r.GRPCRoutes })}, true
			}
		case "TLSRoute", "TCPRoute", "UDPRoute":
			if !beta {
				return streamRouteKind(kind), true
			}
		case "ReferenceGrant":
			return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.ReferenceGrant { return &r.ReferenceGrants })}, true
		case "ListenerSet":
			if !beta {
				return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.ListenerSet { return &r.ListenerSets })}, true
			}
		case "BackendTLSPolicy":
			if !beta {
				return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.BackendTLSPolicy { return &r.BackendTLSPolicies })}, true
			}
		}
	case gw + "/v1alpha2", gw + "/v1alpha3":
		// The earlier versions of TLSRoute, TCPRoute and UDPRoute have the
		// fields of v1, which the strict decoding checks.
		switch {
		case kind == "TLSRoute", (kind == "TCPRoute" || kind == "UDPRoute") && apiVersion == gw+"/v1alpha2":
			return streamRouteKind(kind), true
		}
	case "v1":
		switch kind {
		case "Service":
			return kindInfo{"", true, decodeInto(func(r *gatewayapi.Resources) *[]corev1.Service { return &r.Services })}, true
		case "Secret":
			return kindInfo{"", true, decodeSecret}, true
		case "ConfigMap":
			return kindInfo{"", true, decodeInto(func(r *gatewayapi.Resources) *[]corev1.ConfigMap { return &r.ConfigMaps })}, true
		case "Namespace":
			return kindInfo{"", false, decodeInto(func(r *gatewayapi.Resources) *[]corev1.Namespace { return &r.Namespaces })}, true
		}
	case "discovery.k8s.io/v1":
		if kind == "EndpointSlice" {
			return kindInfo{"discovery.k8s.io", true, decodeEndpointSlice}, true
		}
	case gatewayxv1alpha1.GroupVersion.String():
		if kind == "XBackendTrafficPolicy" {
			return kindInfo{gatewayxv1alpha1.GroupName, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayxv1alpha1.XBackendTrafficPolicy {
				return &r.XBackendTrafficPolicies
			})}, true
		}
	case rautaGroup + "/v1alpha1":
		switch kind {
		case "BackendPolicy":
			return kindInfo{rautaGroup, true, decodeInto(func(r *gatewayapi.Resources) *[]rautav1alpha1.BackendPolicy { return &r.BackendPolicies })}, true
		case "TrafficPolicy":
			return kindInfo{rautaGroup, true, decodeInto(func(r *gatewayapi.Resources) *[]rautav1alpha1.TrafficPolicy { return &r.TrafficPolicies })}, true
		}
	}
	return kindInfo{}, false
}

// streamRouteKind decodes a TLSRoute, a TCPRoute or a UDPRoute (of any
// version the fields of v1 cover).
func streamRouteKind(kind string) kindInfo {
	const gw = "gateway.networking.k8s.io"
	switch kind {
	case "TLSRoute":
		return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.TLSRoute { return &r.TLSRoutes })}
	case "UDPRoute":
		return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.UDPRoute { return &r.UDPRoutes })}
	}
	return kindInfo{gw, true, decodeInto(func(r *gatewayapi.Resources) *[]gatewayv1.TCPRoute { return &r.TCPRoutes })}
}

// gatewayAPIKind reports whether apiVersion and kind name a kind of the
// Gateway API module (its standard and experimental groups), by the
// module's own registry of kinds; rauta does not serve those lookupKind
// does not know.
func (p *parser) gatewayAPIKind(apiVersion, kind string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || gv.Group != gatewayv1.GroupName && gv.Group != gatewayxv1alpha1.GroupName {
		return false
	}
	if _, served := lookupKind(gatewayv1.GroupVersion.String(), kind); served {
		// A kind rauta serves (GRPCRoute, say) in a version it does not
		// read is an unsupported kind, not a kind rauta does not serve.
		return false
	}
	if p.scheme == nil {
		p.scheme = runtime.NewScheme()
		for _, add := range []func(*runtime.Scheme) error{gatewayv1.AddToScheme, gatewayv1beta1.AddToScheme,
			gatewayv1alpha2.AddToScheme, gatewayv1alpha3.AddToScheme, gatewayxv1alpha1.AddToScheme} {
			if err := add(p.scheme); err != nil {
				panic(err) // the module's registrations do not fail
			}
		}
	}
	return p.scheme.Recognizes(gv.WithKind(kind)) && !strings.HasSuffix(kind, "List")
}

// object is the constraint of the typed objects decoded: a value type
// whose pointer exposes its metadata.
type object[T any] interface {
	*T
	metav1.Object
}

// decodeInto returns a decoder appending to the slice list returns.
func decodeInto[T any, PT object[T]](list func(*gatewayapi.Resources) *[]T) func(*gatewayapi.Resources, []byte, string) []error {
	return func(res *gatewayapi.Resources, js []byte, ns string) []error {
		var v T
		if errs := decodeStrict(js, PT(&v), ns); len(errs) > 0 {
			return errs
		}
		l := list(res)
		*l = append(*l, v)
		return nil
	}
}

// decodeStrict decodes js into obj, rejecting unknown and duplicate
// fields, and applies the defaults the API server would: the namespace
// and a generation of 1.
func decodeStrict(js []byte, obj metav1.Object, ns string) []error {
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return []error{decodeError(err)}
	}
	if len(strict) > 0 {
		return strict
	}
	obj.SetNamespace(ns)
	if obj.GetGeneration() == 0 {
		obj.SetGeneration(1)
	}
	return nil
}

// decodeSecret decodes a Secret, folding stringData into data as the API
// server does.
func decodeSecret(res *gatewayapi.Resources, js []byte, ns string) []error {
	var s corev1.Secret
	if errs := decodeStrict(js, &s, ns); len(errs) > 0 {
		return errs
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
	res.Secrets = append(res.Secrets, s)
	return nil
}

// decodeEndpointSlice decodes an EndpointSlice and checks the fields the
// file source relies on.
func decodeEndpointSlice(res *gatewayapi.Resources, js []byte, ns string) []error {
	var s discoveryv1.EndpointSlice
	if errs := decodeStrict(js, &s, ns); len(errs) > 0 {
		return errs
	}
	var errs []error
	if s.Labels[discoveryv1.LabelServiceName] == "" {
		errs = append(errs, &fieldError{"metadata.labels", fmt.Errorf("%w: the label %s naming the Service is required", ErrInvalidValue, discoveryv1.LabelServiceName)})
	}
	switch s.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	case "":
		errs = append(errs, &fieldError{"addressType", fmt.Errorf("%w: required (IPv4, IPv6 or FQDN)", ErrInvalidValue)})
	default:
		errs = append(errs, &fieldError{"addressType", fmt.Errorf("%w: %q (want IPv4, IPv6 or FQDN)", ErrInvalidValue, s.AddressType)})
	}
	for i, ep := range s.Endpoints {
		if len(ep.Addresses) == 0 {
			errs = append(errs, &fieldError{fmt.Sprintf("endpoints[%d].addresses", i), fmt.Errorf("%w: required", ErrInvalidValue)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	res.EndpointSlices = append(res.EndpointSlices, s)
	return nil
}
