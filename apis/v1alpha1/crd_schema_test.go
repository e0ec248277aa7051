package v1alpha1_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/apis/v1alpha1"
)

// crdDir holds the CRDs generated from the types (hack/gen-api).
const crdDir = "../../deploy/crds"

// crd is the part of a CustomResourceDefinition the tests read.
type crd struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind       string   `json:"kind"`
			ListKind   string   `json:"listKind"`
			Plural     string   `json:"plural"`
			Singular   string   `json:"singular"`
			ShortNames []string `json:"shortNames"`
			Categories []string `json:"categories"`
		} `json:"names"`
		Scope    string `json:"scope"`
		Versions []struct {
			Name         string `json:"name"`
			Served       bool   `json:"served"`
			Storage      bool   `json:"storage"`
			Subresources struct {
				Status *struct{} `json:"status"`
			} `json:"subresources"`
			Schema struct {
				OpenAPIV3Schema *openAPISchema `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

// openAPISchema is the part of an OpenAPI v3 schema that the Go types determine.
type openAPISchema struct {
	Type                 string                    `json:"type"`
	Format               string                    `json:"format"`
	Properties           map[string]*openAPISchema `json:"properties"`
	Required             []string                  `json:"required"`
	Items                *openAPISchema            `json:"items"`
	AdditionalProperties *openAPISchema            `json:"additionalProperties"`
	IntOrString          bool                      `json:"x-kubernetes-int-or-string"`
	Validations          []struct {
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"x-kubernetes-validations"`
}

// readCRD reads the committed CRD of a resource.
func readCRD(t *testing.T, plural string) *crd {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(crdDir, v1alpha1.GroupName+"_"+plural+".yaml"))
	if err != nil {
		t.Fatalf("%v (run hack/gen-api)", err)
	}
	var c crd
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", plural, err)
	}
	return &c
}

// TestCRDsMatchTypes checks the committed CRDs against the Go types, both
// ways: every JSON field of the types is a property of the schema with
// the matching type and the same required-ness (a field without
// omitempty is required), and every property of the schema is a field.
// A type or marker changed without running hack/gen-api fails here.
func TestCRDsMatchTypes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"gateway.rauta.io_backendpolicies.yaml", "gateway.rauta.io_trafficpolicies.yaml"}
	if !slices.Equal(names, want) {
		t.Errorf("deploy/crds holds %q, want %q", names, want)
	}

	for _, tc := range []struct {
		plural, singular, short string
		obj, list               any
	}{
		{"backendpolicies", "backendpolicy", "rbp", v1alpha1.BackendPolicy{}, v1alpha1.BackendPolicyList{}},
		{"trafficpolicies", "trafficpolicy", "rtp", v1alpha1.TrafficPolicy{}, v1alpha1.TrafficPolicyList{}},
	} {
		t.Run(tc.plural, func(t *testing.T) {
			c := readCRD(t, tc.plural)
			kind := reflect.TypeOf(tc.obj).Name()
			n := c.Spec.Names
			if c.APIVersion != "apiextensions.k8s.io/v1" || c.Kind != "CustomResourceDefinition" ||
				c.Metadata.Name != tc.plural+"."+v1alpha1.GroupName || c.Spec.Group != v1alpha1.GroupName || c.Spec.Scope != "Namespaced" {
				t.Errorf("CRD %s %s: group %q scope %q", c.Kind, c.Metadata.Name, c.Spec.Group, c.Spec.Scope)
			}
			if n.Kind != kind || n.ListKind != reflect.TypeOf(tc.list).Name() || n.Plural != tc.plural ||
				n.Singular != tc.singular || !slices.Equal(n.ShortNames, []string{tc.short}) ||
				!slices.Equal(n.Categories, []string{"gateway-api", "rauta"}) {
				t.Errorf("names %+v", n)
			}
			var res string
			switch kind {
			case "BackendPolicy":
				res = v1alpha1.BackendPolicyResource.Resource
			case "TrafficPolicy":
				res = v1alpha1.TrafficPolicyResource.Resource
			}
			if res != n.Plural {
				t.Errorf("GroupVersionResource names %q, the CRD %q", res, n.Plural)
			}
			if len(c.Spec.Versions) != 1 {
				t.Fatalf("%d versions, want 1", len(c.Spec.Versions))
			}
			v := c.Spec.Versions[0]
			if v.Name != v1alpha1.GroupVersion.Version || !v.Served || !v.Storage || v.Subresources.Status == nil {
				t.Errorf("version %s served %v storage %v status subresource %v", v.Name, v.Served, v.Storage, v.Subresources.Status != nil)
			}
			if v.Schema.OpenAPIV3Schema == nil {
				t.Fatal("no openAPIV3Schema")
			}
			for _, p := range compareSchema(reflect.TypeOf(tc.obj), v.Schema.OpenAPIV3Schema, kind) {
				t.Error(p)
			}
		})
	}
}

var (
	quantityType   = reflect.TypeFor[resource.Quantity]()
	timeType       = reflect.TypeFor[metav1.Time]()
	objectMetaType = reflect.TypeFor[metav1.ObjectMeta]()
)

// compareSchema returns the differences between a Go type and its schema,
// each naming its path.
func compareSchema(typ reflect.Type, s *openAPISchema, path string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if s == nil {
		return []string{path + ": no schema"}
	}
	mismatch := func(want string) []string {
		return []string{path + ": schema type " + s.Type + "/" + s.Format + " for Go " + typ.String() + ", want " + want}
	}
	switch {
	case typ == quantityType:
		if !s.IntOrString {
			return mismatch("x-kubernetes-int-or-string")
		}
		return nil
	case typ == timeType:
		if s.Type != "string" || s.Format != "date-time" {
			return mismatch("string/date-time")
		}
		return nil
	case typ == objectMetaType:
		// The API server owns metadata's schema.
		if s.Type != "object" || len(s.Properties) != 0 {
			return mismatch("object without properties")
		}
		return nil
	}
	switch typ.Kind() {
	case reflect.String:
		if s.Type != "string" {
			return mismatch("string")
		}
	case reflect.Bool:
		if s.Type != "boolean" {
			return mismatch("boolean")
		}
	case reflect.Int32, reflect.Int64:
		want := "int32"
		if typ.Kind() == reflect.Int64 {
			want = "int64"
		}
		if s.Type != "integer" || s.Format != want {
			return mismatch("integer/" + want)
		}
	case reflect.Slice:
		if s.Type != "array" {
			return mismatch("array")
		}
		return compareSchema(typ.Elem(), s.Items, path+"[]")
	case reflect.Map:
		if s.Type != "object" || typ.Key().Kind() != reflect.String {
			return mismatch("object with additionalProperties")
		}
		return compareSchema(typ.Elem(), s.AdditionalProperties, path+"{}")
	case reflect.Struct:
		if s.Type != "object" {
			return mismatch("object")
		}
		return compareStruct(typ, s, path)
	default:
		return []string{path + ": Go " + typ.String() + " has no schema mapping in this test"}
	}
	return nil
}

// field is one JSON field of a struct, inlined fields flattened.
type field struct {
	name     string
	required bool
	typ      reflect.Type
}

// jsonFields returns the JSON fields of a struct as encoding/json sees
// them: embedded structs without a name and ",inline" fields are
// flattened, "-" is skipped.
func jsonFields(typ reflect.Type) []field {
	var out []field
	for f := range typ.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if (f.Anonymous && name == "") || slices.Contains(strings.Split(opts, ","), "inline") {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, field{name: name, required: !slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type})
	}
	return out
}

// markedRequired are the fields, as "GoType.jsonName", that a +required
// marker makes required although their tag has omitempty.
var markedRequired = map[string]bool{
	// gateway-api marks the conditions of an ancestor +required.
	"v1.PolicyAncestorStatus.conditions": true,
}

func compareStruct(typ reflect.Type, s *openAPISchema, path string) []string {
	var problems []string
	seen := map[string]bool{}
	for _, f := range jsonFields(typ) {
		p := path + "." + f.name
		seen[f.name] = true
		sub, ok := s.Properties[f.name]
		if !ok {
			problems = append(problems, p+": field of Go "+typ.String()+" missing from the schema")
			continue
		}
		if markedRequired[typ.String()+"."+f.name] {
			f.required = true
		}
		if req := slices.Contains(s.Required, f.name); req != f.required {
			problems = append(problems, p+": required "+yesNo(req)+" in the schema, "+yesNo(f.required)+" in Go (a field without omitempty is required)")
		}
		problems = append(problems, compareSchema(f.typ, sub, p)...)
	}
	for name := range s.Properties {
		if !seen[name] {
			problems = append(problems, path+"."+name+": in the schema but not a field of Go "+typ.String())
		}
	}
	for _, name := range s.Required {
		if !seen[name] {
			problems = append(problems, path+"."+name+": required by the schema but not a field of Go "+typ.String())
		}
	}
	slices.Sort(problems)
	return problems
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestCompareSchemaFindsDrift checks that the comparison catches each kind
// of drift, naming the path, so TestCRDsMatchTypes cannot pass by
// comparing nothing.
func TestCompareSchemaFindsDrift(t *testing.T) {
	type inner struct {
		N int32 `json:"n"`
	}
	type obj struct {
		metav1.TypeMeta `json:",inline"`
		A               string            `json:"a"`
		B               *inner            `json:"b,omitempty"`
		C               []inner           `json:"c,omitempty"`
		D               map[string]string `json:"d,omitempty"`
	}
	good := func() *openAPISchema {
		return &openAPISchema{Type: "object", Required: []string{"a"}, Properties: map[string]*openAPISchema{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"a":          {Type: "string"},
			"b":          {Type: "object", Required: []string{"n"}, Properties: map[string]*openAPISchema{"n": {Type: "integer", Format: "int32"}}},
			"c":          {Type: "array", Items: &openAPISchema{Type: "object", Required: []string{"n"}, Properties: map[string]*openAPISchema{"n": {Type: "integer", Format: "int32"}}}},
			"d":          {Type: "object", AdditionalProperties: &openAPISchema{Type: "string"}},
		}}
	}
	typ := reflect.TypeFor[obj]()
	if p := compareSchema(typ, good(), "obj"); len(p) != 0 {
		t.Fatalf("matching schema: %q", p)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*openAPISchema)
		want   string
	}{
		{"field missing from the schema", func(s *openAPISchema) { delete(s.Properties["b"].Properties, "n") }, "obj.b.n: field of Go v1alpha1_test.inner missing from the schema"},
		{"property not in Go", func(s *openAPISchema) { s.Properties["c"].Items.Properties["x"] = &openAPISchema{Type: "string"} }, "obj.c[].x: in the schema but not a field"},
		{"required in the schema only", func(s *openAPISchema) { s.Required = append(s.Required, "b") }, "obj.b: required yes in the schema, no in Go"},
		{"required in Go only", func(s *openAPISchema) { s.Properties["c"].Items.Required = nil }, "obj.c[].n: required no in the schema, yes in Go"},
		{"required but unknown", func(s *openAPISchema) { s.Required = append(s.Required, "z") }, "obj.z: required by the schema but not a field"},
		{"wrong type", func(s *openAPISchema) { s.Properties["d"].AdditionalProperties.Type = "integer" }, "obj.d{}: schema type integer/ for Go string, want string"},
		{"slice as object", func(s *openAPISchema) { s.Properties["c"].Type = "object" }, "obj.c: schema type object/ for Go []v1alpha1_test.inner, want array"},
		{"int64 format", func(s *openAPISchema) { s.Properties["b"].Properties["n"].Format = "int64" }, "obj.b.n: schema type integer/int64 for Go int32"},
	} {
		s := good()
		tc.mutate(s)
		p := compareSchema(typ, s, "obj")
		if len(p) != 1 || !strings.Contains(p[0], tc.want) {
			t.Errorf("%s: problems %q, want one containing %q", tc.name, p, tc.want)
		}
	}
}
