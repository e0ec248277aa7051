package grafana_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const operatingDoc = "../../docs/operating.md"

// section returns the text of docs/operating.md from the heading "## "+name
// to the next heading of that level.
func section(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(operatingDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+name+"\n")
	if i < 0 {
		t.Fatalf("%s: no section %q", operatingDoc, name)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	return s
}

var metricRowRE = regexp.MustCompile("(?m)^\\| `(rauta_[a-z0-9_]+)` \\| ([a-z]+) \\|([^|]*)\\|")

// TestDocMetrics checks that docs/operating.md has a row for every metric
// the proxy registers, with its type and labels, and none for a metric it
// does not.
func TestDocMetrics(t *testing.T) {
	e := exerciseProxy(t)
	rows := map[string]bool{}
	for _, m := range metricRowRE.FindAllStringSubmatch(section(t, "Metrics"), -1) {
		name, kind, labelCell := m[1], metricKind(m[2]), m[3]
		rows[name] = true
		reg := e.metrics[name]
		if reg == nil {
			t.Errorf("%s is documented but not registered", name)
			continue
		}
		if kind != reg.kind {
			t.Errorf("%s documented as a %s, registered as a %s", name, kind, reg.kind)
		}
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(labelCell, -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		if !slices.Equal(labels, reg.labels) {
			t.Errorf("%s documented with labels %q, registered with %q", name, labels, reg.labels)
		}
	}
	for name := range e.metrics {
		if !rows[name] {
			t.Errorf("%s is registered but has no row in %s", name, operatingDoc)
		}
	}
}

// TestDocAccessLogFields checks that every field of a real access log
// record is documented.
func TestDocAccessLogFields(t *testing.T) {
	e := exerciseProxy(t)
	doc := section(t, "Access logs, request IDs and trace context")
	keys := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(e.accessLog), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		for k := range rec {
			keys[k] = true
		}
	}
	if !keys["reason"] || !keys["request_id"] || len(keys) < 15 {
		t.Fatalf("access log keys %v: want the fields of a proxied request and of a gateway answer", keys)
	}
	for k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("access log field %q is not documented", k)
		}
	}
}
