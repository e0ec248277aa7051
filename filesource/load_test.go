package filesource

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

// writeFiles writes name -> content into a new temporary directory.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const validObjects = `# The gateway.
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
  namespace: ignored-for-cluster-scoped
spec:
  controllerName: rauta.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
  name: gw
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
---
---
# only a comment
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
  namespace: apps
  generation: 7
spec:
  parentRefs:
  - name: gw
    namespace: default
  rules:
  - backendRefs:
    - name: echo
      port: 80
`

const validBackends = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: echo
    namespace: apps
  spec:
    ports:
    - name: http
      port: 80
      targetPort: 9001
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: echo-1
    namespace: apps
    labels:
      kubernetes.io/service-name: echo
  addressType: IPv4
  ports:
  - name: http
    port: 9001
  endpoints:
  - addresses: [127.0.0.1]
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
type: kubernetes.io/tls
data:
  tls.crt: Y2VydA==
stringData:
  tls.key: key
`

func TestLoadDirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a-gateway.yaml":   validObjects,
		"b-backends.yml":   validBackends,
		"c-ns.json":        `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": {"team": "a"}}}`,
		"README.md":        "not read",
		".hidden.yaml":     "not: read",
		"sub/nested.yaml":  "not: read",
		"z-empty.yaml":     "\n# nothing\n",
		"broken-link.yaml": "",
	})
	// A dangling symbolic link is skipped; a link to a file is followed.
	if err := os.Remove(filepath.Join(dir, "broken-link.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "broken-link.yaml")); err != nil {
		t.Fatal(err)
	}
	res, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "GatewayClass"},
			ObjectMeta: metav1.ObjectMeta{Name: "rauta", Generation: 1},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: "rauta.io/gateway-controller"},
		}},
		Gateways: []gatewayv1.Gateway{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1beta1", Kind: "Gateway"},
			ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default", Generation: 1},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: "rauta",
				Listeners:        []gatewayv1.Listener{{Name: "http", Protocol: gatewayv1.HTTPProtocolType, Port: 8080}},
			},
		}},
		HTTPRoutes: []gatewayv1.HTTPRoute{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps", Generation: 7},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
					Name: "gw", Namespace: new(gatewayv1.Namespace("default")),
				}}},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{
					BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
						Name: "echo", Port: new(gatewayv1.PortNumber(80)),
					}},
				}}}},
			},
		}},
		Services: []corev1.Service{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "apps", Generation: 1},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt32(9001),
			}}},
		}},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "apps", Generation: 1,
				Labels: map[string]string{"kubernetes.io/service-name": "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(9001))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
		}},
		Secrets: []corev1.Secret{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default", Generation: 1},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key")},
		}},
		Namespaces: []corev1.Namespace{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: "apps", Generation: 1, Labels: map[string]string{"team": "a"}},
		}},
	}
	if diff := cmp.Diff(want, res, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadSingleFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"all.txt": validObjects})
	res, err := Load(filepath.Join(dir, "all.txt")) // a file is read whatever its name
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GatewayClasses) != 1 || len(res.Gateways) != 1 || len(res.HTTPRoutes) != 1 {
		t.Errorf("got %d classes, %d gateways, %d routes; want 1 each", len(res.GatewayClasses), len(res.Gateways), len(res.HTTPRoutes))
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing path: %v, want ErrNotExist", err)
	}
}

const routeHeader = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: foo
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		want    []Error // Err is compared with errors.Is
	}{{
		name: "unknown field",
		file: "gateway.yaml",
		content: validObjects + "---\n" + routeHeader + `spec:
  rules:
  - matches:
    - path:
        type: PathPrefix
        valeu: /
`,
		want: []Error{{Document: 4, Line: 39, Item: -1, Object: "HTTPRoute default/foo",
			Field: "spec.rules[0].matches[0].path.valeu", Err: ErrUnknownField}},
	}, {
		name:    "unknown top-level field and wrong type",
		file:    "x.yaml",
		content: routeHeader + "spek: {}\n---\n" + routeHeader + "  namespace: b\nspec:\n  rules: {}\n",
		want: []Error{
			{Document: 1, Line: 1, Item: -1, Object: "HTTPRoute default/foo", Field: "spek", Err: ErrUnknownField},
			{Document: 2, Line: 7, Item: -1, Object: "HTTPRoute b/foo", Field: "spec.rules", Err: ErrInvalidValue},
		},
	}, {
		name:    "duplicate field",
		file:    "dup.yaml",
		content: "\n\n" + routeHeader + "  name: bar\n",
		want:    []Error{{Document: 1, Line: 3, Item: -1, Object: "HTTPRoute default/bar", Field: "name", Err: ErrDuplicateField}},
	}, {
		name:    "syntax error",
		file:    "bad.yaml",
		content: validObjects + "---\n" + routeHeader + "spec:\n  rules:\n  - matches: [\n",
		want:    []Error{{Document: 4, Line: 39, Item: -1, Err: ErrSyntax}},
	}, {
		name:    "not an object",
		file:    "list.yaml",
		content: "- a\n- b\n",
		want:    []Error{{Document: 1, Line: 1, Item: -1, Err: ErrInvalidValue}},
	}, {
		name:    "missing kind and apiVersion",
		file:    "k.yaml",
		content: "apiVersion: v1\nmetadata: {name: x}\n---\nkind: Service\n",
		want: []Error{
			{Document: 1, Line: 1, Item: -1, Field: "kind", Err: ErrInvalidValue},
			{Document: 2, Line: 4, Item: -1, Field: "apiVersion", Err: ErrInvalidValue},
		},
	}, {
		name:    "unsupported kinds",
		file:    "k.yaml",
		content: "apiVersion: gateway.networking.k8s.io/v1\nkind: FooRoute\nmetadata: {name: x}\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: BackendTLSPolicy\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: x}\n",
		want: []Error{
			{Document: 1, Line: 1, Item: -1, Err: ErrUnsupportedKind},
			{Document: 2, Line: 5, Item: -1, Err: ErrUnsupportedKind},
			{Document: 3, Line: 9, Item: -1, Err: ErrUnsupportedKind},
		},
	}, {
		name:    "bad names",
		file:    "n.yaml",
		content: "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ok, namespace: NS}\n---\napiVersion: v1\nkind: Secret\nmetadata: {namespace: a}\n",
		want: []Error{
			{Document: 1, Line: 1, Item: -1, Object: "Service default/Bad_Name", Field: "metadata.name", Err: ErrInvalidValue},
			{Document: 2, Line: 5, Item: -1, Object: "Service NS/ok", Field: "metadata.namespace", Err: ErrInvalidValue},
			{Document: 3, Line: 9, Item: -1, Object: "Secret", Field: "metadata.name", Err: ErrInvalidValue},
		},
	}, {
		name:    "duplicate object",
		file:    "d.yaml",
		content: routeHeader + "---\n" + routeHeader + "  namespace: default\n---\n" + routeHeader + "  namespace: other\n",
		want:    []Error{{Document: 2, Line: 6, Item: -1, Object: "HTTPRoute default/foo", Err: ErrDuplicateObject}},
	}, {
		name: "list items",
		file: "l.yaml",
		content: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
  spec: {portz: []}
- apiVersion: v1
  kind: List
  items: []
`,
		want: []Error{
			{Document: 1, Line: 1, Item: 0, Object: "Service default/a", Field: "spec.portz", Err: ErrUnknownField},
			{Document: 1, Line: 1, Item: 1, Field: "kind", Err: ErrUnsupportedKind},
		},
	}, {
		name: "endpoint slice checks",
		file: "e.yaml",
		content: `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a}
addressType: IPv5
endpoints:
- addresses: []
`,
		want: []Error{
			{Document: 1, Line: 1, Item: -1, Object: "EndpointSlice default/a", Field: "metadata.labels", Err: ErrInvalidValue},
			{Document: 1, Line: 1, Item: -1, Object: "EndpointSlice default/a", Field: "addressType", Err: ErrInvalidValue},
			{Document: 1, Line: 1, Item: -1, Object: "EndpointSlice default/a", Field: "endpoints[0].addresses", Err: ErrInvalidValue},
		},
	}, {
		name:    "json file",
		file:    "j.json",
		content: "\n{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"}, \"extra\": 1}\n",
		want:    []Error{{Document: 1, Line: 2, Item: -1, Object: "Service default/a", Field: "extra", Err: ErrUnknownField}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{tt.file: tt.content})
			res, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", res)
			}
			if res != nil {
				t.Errorf("Load returned Resources with an error")
			}
			var got []Error
			for _, e := range flatten(err) {
				var fe *Error
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not an *Error", e)
				}
				got = append(got, *fe)
			}
			path := filepath.Join(dir, tt.file)
			for i := range tt.want {
				tt.want[i].File = path
			}
			opt := cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })
			if diff := cmp.Diff(tt.want, got, opt); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nfull error:\n%v", diff, err)
			}
			for _, e := range got {
				if !strings.HasPrefix(e.Error(), path+": document ") {
					t.Errorf("message %q does not start with the file and document", e.Error())
				}
			}
		})
	}
}

// flatten unwraps an errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestErrorMessages(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"gateway.yaml": "# first\n---\n" + routeHeader + "spec:\n  rules:\n  - matches:\n    - path: {type: Exact, valeu: /}\n",
		"syntax.yaml":  "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   namespace: b\n",
		"dups.yaml":    "apiVersion: v1\n\nkind: Service\nmetadata: {name: a}\nkind: Service\n",
	})
	_, err := Load(dir)
	for _, want := range []string{
		filepath.Join(dir, "gateway.yaml") + ": document 1 (line 3): HTTPRoute default/foo: spec.rules[0].matches[0].path.valeu: unknown field",
		// The YAML parser's line is a line of the file.
		filepath.Join(dir, "syntax.yaml") + ": document 1 (line 1): syntax error: line 5: mapping values are not allowed in this context",
		filepath.Join(dir, "dups.yaml") + ": document 1 (line 1): Service default/a: kind: duplicate field (line 5)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain\n  %s\ngot:\n%v", want, err)
		}
	}
}

func TestLoadTooManyErrors(t *testing.T) {
	var b strings.Builder
	for range maxErrors + 10 {
		b.WriteString("apiVersion: v1\nkind: Nope\n---\n")
	}
	_, err := Load(writeFiles(t, map[string]string{"many.yaml": b.String()}))
	errs := flatten(err)
	if len(errs) != maxErrors+1 || !strings.Contains(errs[maxErrors].Error(), "too many errors") {
		t.Errorf("got %d errors, last %v; want %d and a final 'too many errors'", len(errs), errs[len(errs)-1], maxErrors+1)
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "a: 1\n---\n\n# c\nb: 2\n--- # comment\n---\nc: 3\n...\n---\r\nd: 4"
	got := splitDocuments("x.yaml", []byte(in))
	type doc struct {
		Index, Line, First int
		Data               string
	}
	var gotDocs []doc
	for _, d := range got {
		gotDocs = append(gotDocs, doc{d.index, d.line, d.first, string(d.data)})
	}
	want := []doc{
		{1, 1, 1, "a: 1\n"},
		{2, 5, 3, "\n# c\nb: 2\n"},
		{3, 8, 8, "c: 3\n"},
		{4, 11, 11, "d: 4"},
	}
	if diff := cmp.Diff(want, gotDocs); diff != "" {
		t.Errorf("splitDocuments (-want +got):\n%s", diff)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(validObjects))
	f.Add([]byte(validBackends))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List}]\n"))
	f.Add([]byte("a: [\n---\n- b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := parse([]file{{name: "f.yaml", data: data}})
		if (res == nil) == (err == nil) {
			t.Fatalf("parse returned res=%v err=%v", res, err)
		}
		for _, e := range flatten(err) {
			var fe *Error
			if errors.As(e, &fe) && fe.Document < 1 {
				t.Errorf("error without a document: %v", e)
			}
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	dir := writeFiles(b, map[string]string{"a.yaml": validObjects, "b.yaml": validBackends})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashFiles(b *testing.B) {
	files, err := readTree(writeFiles(b, map[string]string{"a.yaml": validObjects, "b.yaml": validBackends}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		hashFiles(files)
	}
}
