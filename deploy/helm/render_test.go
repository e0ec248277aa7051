package helm_test

// A renderer for the rauta chart, for machines without the helm binary
// (Debian packages none). It follows `helm template`: every file of
// templates/ is parsed into one text/template set, so the named templates
// of _helpers.tpl are visible to all; every file whose name does not start
// with "_" is executed with .Values (values.yaml, deep-merged with the
// overrides), .Release and .Chart; the output is split into YAML documents
// on "---" lines and empty documents are dropped; documents are sorted in
// Helm's install order by kind.
//
// Only the functions the chart uses are provided, with Sprig's argument
// order and semantics, so a template calling anything else fails to parse.
// Unlike Helm's default (missingkey=zero), a missing map key is an error,
// as with `helm lint --strict`: a template cannot read a value that
// values.yaml does not declare.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// chartMeta is Chart.yaml, exposed to templates as .Chart with the field
// names Helm uses.
type chartMeta struct {
	APIVersion  string   `json:"apiVersion"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	Version     string   `json:"version"`
	AppVersion  string   `json:"appVersion"`
	Home        string   `json:"home"`
	Keywords    []string `json:"keywords"`
}

// release is .Release.
type release struct {
	Name      string
	Namespace string
	Service   string
	Revision  int
	IsInstall bool
	IsUpgrade bool
}

// chart is a chart directory loaded for rendering.
type chart struct {
	dir    string
	meta   chartMeta
	values []byte   // values.yaml
	files  []string // template file names, relative to templates/
	srcs   map[string]string
}

// loadChart reads Chart.yaml, values.yaml and templates/ of dir.
func loadChart(dir string) (*chart, error) {
	c := &chart{dir: dir, srcs: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(b, &c.meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	if c.values, err = os.ReadFile(filepath.Join(dir, "values.yaml")); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "templates"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("templates/%s: subdirectories are not supported by this renderer", e.Name())
		}
		b, err := os.ReadFile(filepath.Join(dir, "templates", e.Name()))
		if err != nil {
			return nil, err
		}
		c.files = append(c.files, e.Name())
		c.srcs[e.Name()] = string(b)
	}
	slices.Sort(c.files)
	return c, nil
}

// document is one rendered YAML document.
type document struct {
	source string // "rauta/templates/deployment.yaml"
	text   string
	obj    *unstructured.Unstructured
}

// rendered is the output of one render.
type rendered struct {
	docs  []document
	notes string // templates/NOTES.txt
}

// manifest returns the documents as one YAML stream, as `helm template`
// prints it.
func (r *rendered) manifest() []byte {
	var b bytes.Buffer
	for _, d := range r.docs {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", d.source, d.text)
	}
	return b.Bytes()
}

// find returns the objects of a kind, by name.
func (r *rendered) find(kind, name string) *unstructured.Unstructured {
	for _, d := range r.docs {
		if d.obj.GetKind() == kind && d.obj.GetName() == name {
			return d.obj
		}
	}
	return nil
}

// ofKind returns every object of a kind.
func (r *rendered) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, d := range r.docs {
		if d.obj.GetKind() == kind {
			out = append(out, d.obj)
		}
	}
	return out
}

// render renders the chart for rel with values.yaml deep-merged with
// overrides (a YAML document, as given to `helm template -f`).
func (c *chart) render(rel release, overrides string) (*rendered, error) {
	var values map[string]any
	if err := yaml.Unmarshal(c.values, &values); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	if overrides != "" {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(overrides), &o); err != nil {
			return nil, fmt.Errorf("overrides: %w", err)
		}
		mergeValues(values, o)
	}
	if rel.Service == "" {
		rel.Service = "Helm"
	}
	if rel.Revision == 0 {
		rel.Revision, rel.IsInstall = 1, true
	}
	data := map[string]any{"Values": values, "Release": rel, "Chart": c.meta}

	root := template.New(c.meta.Name).Option("missingkey=error")
	root.Funcs(funcMap(root))
	for _, f := range c.files {
		name := c.meta.Name + "/templates/" + f
		if _, err := root.New(name).Parse(c.srcs[f]); err != nil {
			return nil, err
		}
	}
	out := &rendered{}
	for _, f := range c.files {
		if strings.HasPrefix(f, "_") {
			continue
		}
		name := c.meta.Name + "/templates/" + f
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, err
		}
		if f == "NOTES.txt" {
			out.notes = buf.String()
			continue
		}
		for _, text := range splitDocuments(buf.String()) {
			obj, err := parseObject(text)
			if err != nil {
				return nil, fmt.Errorf("%s: %w\n%s", name, err, text)
			}
			out.docs = append(out.docs, document{source: name, text: text, obj: obj})
		}
	}
	slices.SortStableFunc(out.docs, func(a, b document) int {
		return installRank(a.obj.GetKind()) - installRank(b.obj.GetKind())
	})
	return out, nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments splits a template's output into its non-empty YAML
// documents.
func splitDocuments(s string) []string {
	var out []string
	for _, d := range docSeparator.Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			out = append(out, strings.Trim(d, "\n"))
		}
	}
	return out
}

// parseObject parses one document into an object, refusing duplicate keys
// and documents without apiVersion, kind or name.
func parseObject(text string) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, err
	}
	if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
		return nil, errors.New("document without apiVersion, kind or metadata.name")
	}
	return u, nil
}

// installOrder is the order in which Helm installs kinds (unknown kinds,
// custom resources among them, last).
var installOrder = []string{
	"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget",
	"ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
	"Role", "RoleBinding", "Service", "DaemonSet", "Pod", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
}

func installRank(kind string) int {
	if i := slices.Index(installOrder, kind); i >= 0 {
		return i
	}
	return len(installOrder)
}

// mergeValues merges src into dst: maps are merged key by key, any other
// value replaces the one in dst.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// funcMap returns the template functions: Helm's include, and the Sprig
// functions the chart uses.
func funcMap(root *template.Template) template.FuncMap {
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b strings.Builder
			if err := root.ExecuteTemplate(&b, name, data); err != nil {
				return "", err
			}
			return b.String(), nil
		},
		"toYaml": func(v any) string {
			b, err := yaml.Marshal(v)
			if err != nil {
				return "" // as Helm: an unmarshalable value renders empty
			}
			return strings.TrimSuffix(string(b), "\n")
		},
		"quote": func(vs ...any) string {
			out := make([]string, 0, len(vs))
			for _, v := range vs {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", strval(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"default": func(d any, given ...any) any {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"required": func(msg string, v any) (any, error) {
			if v == nil {
				return v, errors.New(msg)
			}
			if s, ok := v.(string); ok && s == "" {
				return v, errors.New(msg)
			}
			return v, nil
		},
		"contains": func(substr, s string) bool { return strings.Contains(s, substr) },
		"indent":   indent,
		"nindent":  func(n int, s string) string { return "\n" + indent(n, s) },
		"trunc": func(n int, s string) string {
			switch {
			case n < 0 && len(s)+n > 0:
				return s[len(s)+n:]
			case n >= 0 && len(s) > n:
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// strval is Sprig's string conversion.
func strval(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprintf("%v", v)
}

// empty is Sprig's emptiness: nil, false, zero numbers, empty strings and
// collections.
func empty(v any) bool {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return true
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Complex64, reflect.Complex128:
		return rv.Complex() == 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return rv.IsNil()
	case reflect.Struct:
		return rv.IsZero()
	}
	return false
}
