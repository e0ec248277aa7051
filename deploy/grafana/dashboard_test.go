// Package grafana_test checks deploy/grafana/rauta-dashboard.json and
// docs/operating.md against the metrics and access log records of a real
// proxy, so that renaming a metric or a label, or adding one, fails here
// until the dashboard and the documentation follow.
package grafana_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const dashboardFile = "rauta-dashboard.json"

type gridPos struct{ H, W, X, Y int }

type target struct {
	Expr         string          `json:"expr"`
	LegendFormat string          `json:"legendFormat"`
	RefID        string          `json:"refId"`
	Datasource   json.RawMessage `json:"datasource"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  json.RawMessage `json:"datasource"`
	GridPos     gridPos         `json:"gridPos"`
	Targets     []target        `json:"targets"`
	Panels      []panel         `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// TestDashboardLayout checks the dashboard's structure: schema, unique
// panel IDs and queries, panels inside the 24-column grid and not
// overlapping, every query on the datasource variable.
func TestDashboardLayout(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want 36 to 41 (Grafana 10 and 11)", d.SchemaVersion)
	}
	if d.UID == "" || len(d.UID) > 40 || d.Title == "" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v variable) bool { return v.Name == "datasource" && v.Type == "datasource" }) {
		t.Error("no datasource variable")
	}
	ids := map[int]bool{}
	var boxes []panel
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, b := range boxes {
			h := b.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", p.Title, b.Title)
			}
		}
		boxes = append(boxes, p)
		switch p.Type {
		case "row":
			if len(p.Targets) > 0 || len(p.Panels) > 0 {
				t.Errorf("row %q: collapsed rows and row queries are not expected", p.Title)
			}
			continue
		case "timeseries", "stat", "state-timeline":
		default:
			t.Errorf("panel %q: type %q", p.Title, p.Type)
		}
		if p.Title == "" || p.Description == "" || p.FieldConfig.Defaults.Unit == "" && p.Type != "state-timeline" {
			t.Errorf("panel %d: title %q, description %q, unit %q: want all three", p.ID, p.Title, p.Description, p.FieldConfig.Defaults.Unit)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: datasource %s, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if !strings.Contains(string(tg.Datasource), "${datasource}") {
				t.Errorf("panel %q query %s: datasource %s", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

var legendRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// TestDashboardQueries checks every query against the metrics a real proxy
// registers: names, types, labels and legends (see promql_test.go), and
// that every metric is on the dashboard.
func TestDashboardQueries(t *testing.T) {
	e := exerciseProxy(t)
	d := loadDashboard(t)
	used := map[string]bool{}
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			n++
			v, err := checkExpr(tg.Expr, e.metrics)
			if err != nil {
				t.Errorf("panel %q query %s: %v\n\t%s", p.Title, tg.RefID, err, tg.Expr)
				continue
			}
			if v.scalar {
				t.Errorf("panel %q query %s: a scalar has no series to show", p.Title, tg.RefID)
			}
			for _, m := range legendRE.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !slices.Contains(v.labels, m[1]) {
					t.Errorf("panel %q query %s: legend {{%s}}, but the series carry only %q", p.Title, tg.RefID, m[1], v.labels)
				}
			}
			for _, m := range v.metrics {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(m, suffix); ok && e.metrics[base] != nil {
						m = base
					}
				}
				used[m] = true
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d queries", n)
	}
	for name := range e.metrics {
		if !used[name] {
			t.Errorf("metric %s is on no panel", name)
		}
	}

	// Variables query label values of real metrics and labels.
	lv := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("variable %s: query %s: %v", v.Name, v.Query, err)
			continue
		}
		for _, s := range []string{q.Query, v.Definition} {
			m := lv.FindStringSubmatch(s)
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, s)
				continue
			}
			if mt := e.metrics[m[1]]; mt == nil || !slices.Contains(mt.labels, m[2]) {
				t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
			}
		}
	}
}

// TestCheckerRefusesMistakes shows that the query checker fails on the
// mistakes it is meant to catch.
func TestCheckerRefusesMistakes(t *testing.T) {
	e := exerciseProxy(t)
	for _, tc := range []struct{ expr, want string }{
		{`sum(rate(rauta_http_requests[5m]))`, "not registered"},
		{`rate(rauta_http_request_duration_seconds[5m])`, "not registered"},
		{`sum by (route) (rauta_upstream_connections)`, `do not have the label "route"`},
		{`rauta_retries_total{backend="x"}`, `has no label "backend"`},
		{`rate(rauta_active_connections[5m])`, "not a counter"},
		{`histogram_quantile(0.9, sum by (route) (rate(rauta_http_request_duration_seconds_bucket[5m])))`, "without the le label"},
		{`histogram_quantile(0.9, rate(rauta_retries_total[5m]))`, "without the le label"},
		{`sum by (route) (rate(rauta_retries_total[5m])) / sum(rate(rauta_http_requests_total[5m]))`, "matches nothing"},
		{`rauta_retries_total[5m]`, "cannot be graphed"},
		{`sum(rate(rauta_retries_total[5m])`, `want ")"`},
		{`rauta_retries_total{route=~"(("}`, "missing closing"},
		{`abs(rauta_config_generation)`, "outside the checked subset"},
	} {
		if _, err := checkExpr(tc.expr, e.metrics); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.expr, err, tc.want)
		}
	}
}

// FuzzCheckExpr checks that the query checker returns an error, never
// panics, whatever the expression.
func FuzzCheckExpr(f *testing.F) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		f.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		f.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			f.Add(tg.Expr)
		}
	}
	f.Add(`rauta_retries_total{route`)
	f.Add(`sum by (`)
	metrics := map[string]*metric{
		"rauta_retries_total":                 {kind: counter, labels: []string{"route"}},
		"rauta_http_request_duration_seconds": {kind: histogram, labels: []string{"code", "route"}},
		"rauta_active_connections":            {kind: gauge, labels: []string{"address"}},
	}
	f.Fuzz(func(t *testing.T, expr string) {
		checkExpr(expr, metrics)
	})
}
