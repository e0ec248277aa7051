package grafana_test

// A checker for the PromQL of the dashboard: a small recursive-descent
// parser of the subset the dashboard uses, which resolves every metric
// selector against what the proxy registers and follows the labels each
// expression carries. It refuses syntax outside the subset, so an
// expression it cannot check fails rather than passes.
//
//	expr     = operand { binop operand }              (PromQL precedence)
//	operand  = number | "-" operand | "(" expr ")" | aggregation | call | selector
//	selector = metric [ "{" matcher { "," matcher } "}" ] [ "[" duration "]" ]
//
// Checks: metrics exist (histograms as _bucket, _sum and _count);
// matchers, by-clauses and legends name labels the series have; rate,
// irate and increase take counters; histogram_quantile takes buckets
// aggregated by le; both sides of a vector operation carry the same
// labels; regular expressions compile.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tNumber
	tString
	tVar // a Grafana variable: $__rate_interval, $route
	tDuration
	tPunct
)

type token struct {
	kind tokKind
	text string
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("string at %d: %w", i, err)
			}
			out = append(out, token{tString, v})
			i = j + 1
		case c == '$':
			j := i + 1
			for j < len(s) && (isIdent(s[j]) || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, token{tVar, s[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e') {
				j++
			}
			if j < len(s) && strings.ContainsRune("smhdwy", rune(s[j])) {
				for j < len(s) && unicode.IsLetter(rune(s[j])) || j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
				out = append(out, token{tDuration, s[i:j]})
			} else {
				out = append(out, token{tNumber, s[i:j]})
			}
			i = j
		case isIdent(c):
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, token{tIdent, s[i:j]})
			i = j
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "=~", "!~", ">=", "<=":
				out = append(out, token{tPunct, two})
				i += 2
				continue
			}
			if !strings.ContainsRune("(){}[],=<>+-*/%^", rune(c)) {
				return nil, fmt.Errorf("unexpected %q at %d", c, i)
			}
			out = append(out, token{tPunct, string(c)})
			i++
		}
	}
	return append(out, token{kind: tEOF}), nil
}

func isIdent(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// value is what an expression evaluates to, as far as the checker cares.
type value struct {
	scalar bool
	labels []string // sorted; the labels a vector's series carry
	rng    string   // for a range selector: the metric name
	// metrics are the metric names selected below this expression.
	metrics []string
}

type parser struct {
	toks    []token
	pos     int
	metrics map[string]*metric
}

// checkExpr parses expr and returns its value.
func checkExpr(expr string, metrics map[string]*metric) (value, error) {
	toks, err := lex(expr)
	if err != nil {
		return value{}, err
	}
	p := &parser{toks: toks, metrics: metrics}
	v, err := p.expr(0)
	if err != nil {
		return value{}, err
	}
	if p.peek().kind != tEOF {
		return value{}, fmt.Errorf("unexpected %q after the expression", p.peek().text)
	}
	if v.rng != "" {
		return value{}, fmt.Errorf("a range vector (%s[...]) cannot be graphed", v.rng)
	}
	return v, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

// next returns the next token; at the end it keeps returning tEOF.
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) expect(s string) error {
	if t := p.next(); t.kind != tPunct || t.text != s {
		return fmt.Errorf("want %q, have %q", s, t.text)
	}
	return nil
}

var precedence = map[string]int{
	"or": 1, "and": 2, "unless": 2,
	"==": 3, "!=": 3, "<": 3, ">": 3, "<=": 3, ">=": 3,
	"+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6,
}

func (p *parser) binop() (string, bool) {
	t := p.peek()
	if t.kind == tPunct || t.kind == tIdent {
		if _, ok := precedence[t.text]; ok {
			return t.text, true
		}
	}
	return "", false
}

func (p *parser) expr(minPrec int) (value, error) {
	left, err := p.operand()
	if err != nil {
		return value{}, err
	}
	for {
		op, ok := p.binop()
		if !ok || precedence[op] <= minPrec && !(op == "^" && precedence[op] == minPrec) {
			return left, nil
		}
		p.next()
		if t := p.peek(); t.kind == tIdent && slices.Contains([]string{"on", "ignoring", "group_left", "group_right", "bool"}, t.text) {
			return value{}, fmt.Errorf("%q modifiers are outside the checked subset", t.text)
		}
		right, err := p.expr(precedence[op])
		if err != nil {
			return value{}, err
		}
		if left.rng != "" || right.rng != "" {
			return value{}, fmt.Errorf("operator %s on a range vector", op)
		}
		res := value{metrics: slices.Concat(left.metrics, right.metrics)}
		switch {
		case left.scalar && right.scalar:
			res.scalar = true
		case left.scalar:
			res.labels = right.labels
		case right.scalar:
			res.labels = left.labels
		case op == "or":
			res.labels = union(left.labels, right.labels)
		case op == "and" || op == "unless":
			res.labels = left.labels
		default:
			if !slices.Equal(left.labels, right.labels) {
				return value{}, fmt.Errorf("operator %s between vectors with labels %q and %q matches nothing", op, left.labels, right.labels)
			}
			res.labels = left.labels
		}
		left = res
	}
}

var aggregations = []string{"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"}

func (p *parser) operand() (value, error) {
	t := p.next()
	switch t.kind {
	case tNumber:
		if _, err := strconv.ParseFloat(t.text, 64); err != nil {
			return value{}, fmt.Errorf("number %q", t.text)
		}
		return value{scalar: true}, nil
	case tPunct:
		switch t.text {
		case "-":
			return p.operand()
		case "(":
			v, err := p.expr(0)
			if err != nil {
				return value{}, err
			}
			return v, p.expect(")")
		}
		return value{}, fmt.Errorf("unexpected %q", t.text)
	case tIdent:
		if slices.Contains(aggregations, t.text) {
			return p.aggregation(t.text)
		}
		if p.peek().text == "(" {
			return p.call(t.text)
		}
		return p.selector(t.text)
	}
	return value{}, fmt.Errorf("unexpected %q", t.text)
}

// grouping parses "by (a, b)" or "without (a)" if present.
func (p *parser) grouping() (mode string, labels []string, err error) {
	t := p.peek()
	if t.kind != tIdent || t.text != "by" && t.text != "without" {
		return "", nil, nil
	}
	p.next()
	if err := p.expect("("); err != nil {
		return "", nil, err
	}
	for {
		l := p.next()
		if l.kind != tIdent {
			return "", nil, fmt.Errorf("%s: want a label, have %q", t.text, l.text)
		}
		labels = append(labels, l.text)
		if p.peek().text == ")" {
			p.next()
			return t.text, labels, nil
		}
		if err := p.expect(","); err != nil {
			return "", nil, err
		}
	}
}

func (p *parser) aggregation(name string) (value, error) {
	mode, labels, err := p.grouping()
	if err != nil {
		return value{}, err
	}
	if err := p.expect("("); err != nil {
		return value{}, err
	}
	arg, err := p.expr(0)
	if err != nil {
		return value{}, err
	}
	if err := p.expect(")"); err != nil {
		return value{}, err
	}
	if mode == "" {
		if mode, labels, err = p.grouping(); err != nil {
			return value{}, err
		}
	}
	if arg.scalar || arg.rng != "" {
		return value{}, fmt.Errorf("%s of a scalar or range vector", name)
	}
	res := value{metrics: arg.metrics}
	switch mode {
	case "by":
		for _, l := range labels {
			if !slices.Contains(arg.labels, l) {
				return value{}, fmt.Errorf("%s by (%s): the series of %q do not have the label %q (they have %q)", name, strings.Join(labels, ", "), arg.metrics, l, arg.labels)
			}
		}
		res.labels = sorted(labels)
	case "without":
		for _, l := range arg.labels {
			if !slices.Contains(labels, l) {
				res.labels = append(res.labels, l)
			}
		}
	}
	return res, nil
}

func (p *parser) args() ([]value, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var out []value
	if p.peek().text == ")" {
		p.next()
		return out, nil
	}
	for {
		v, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		t := p.next()
		if t.text == ")" {
			return out, nil
		}
		if t.text != "," {
			return nil, fmt.Errorf("want , or ), have %q", t.text)
		}
	}
}

func (p *parser) call(name string) (value, error) {
	args, err := p.args()
	if err != nil {
		return value{}, err
	}
	want := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d arguments, has %d", name, n, len(args))
		}
		return nil
	}
	switch name {
	case "rate", "irate", "increase":
		if err := want(1); err != nil {
			return value{}, err
		}
		m := args[0].rng
		if m == "" {
			return value{}, fmt.Errorf("%s takes a range vector", name)
		}
		if base, part := p.resolve(m); base == nil || base.kind != counter && part == "" {
			return value{}, fmt.Errorf("%s(%s): not a counter", name, m)
		}
		return value{labels: args[0].labels, metrics: args[0].metrics}, nil
	case "histogram_quantile":
		if err := want(2); err != nil {
			return value{}, err
		}
		if !args[0].scalar || args[1].scalar || args[1].rng != "" {
			return value{}, fmt.Errorf("histogram_quantile takes a scalar and an instant vector")
		}
		if !slices.Contains(args[1].labels, "le") { // only _bucket series have it
			return value{}, fmt.Errorf("histogram_quantile of series without the le label (histogram buckets aggregated by le)")
		}
		var labels []string
		for _, l := range args[1].labels {
			if l != "le" {
				labels = append(labels, l)
			}
		}
		return value{labels: labels, metrics: args[1].metrics}, nil
	case "time":
		return value{scalar: true}, want(0)
	case "vector":
		if err := want(1); err != nil {
			return value{}, err
		}
		if !args[0].scalar {
			return value{}, fmt.Errorf("vector takes a scalar")
		}
		return value{}, nil
	}
	return value{}, fmt.Errorf("function %s is outside the checked subset", name)
}

// resolve returns the registered metric of a series name, and the
// histogram part ("_bucket", "_sum", "_count") it names, if any.
func (p *parser) resolve(name string) (*metric, string) {
	if m := p.metrics[name]; m != nil {
		if m.kind == histogram {
			return nil, "" // a histogram is selected by its parts
		}
		return m, ""
	}
	for _, part := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, part); ok {
			if m := p.metrics[base]; m != nil && m.kind == histogram {
				return m, part
			}
		}
	}
	return nil, ""
}

func (p *parser) selector(name string) (value, error) {
	m, part := p.resolve(name)
	if m == nil {
		return value{}, fmt.Errorf("metric %s is not registered by the proxy", name)
	}
	labels := union(m.labels, targetLabels)
	if part == "_bucket" {
		labels = union(labels, []string{"le"})
	}
	if p.peek().text == "{" {
		p.next()
		for {
			l := p.next()
			if l.kind != tIdent {
				return value{}, fmt.Errorf("%s{}: want a label, have %q", name, l.text)
			}
			if !slices.Contains(labels, l.text) {
				return value{}, fmt.Errorf("%s has no label %q (it has %q)", name, l.text, labels)
			}
			op := p.next()
			if !slices.Contains([]string{"=", "!=", "=~", "!~"}, op.text) {
				return value{}, fmt.Errorf("%s{%s}: matcher %q", name, l.text, op.text)
			}
			v := p.next()
			if v.kind != tString {
				return value{}, fmt.Errorf("%s{%s}: want a string", name, l.text)
			}
			if op.text == "=~" || op.text == "!~" {
				re := regexp.MustCompile(`\$\w+`).ReplaceAllString(v.text, ".*")
				if _, err := regexp.Compile("^(?:" + re + ")$"); err != nil {
					return value{}, fmt.Errorf("%s{%s}: %w", name, l.text, err)
				}
			}
			t := p.next()
			if t.text == "}" {
				break
			}
			if t.text != "," {
				return value{}, fmt.Errorf("%s{}: want , or }, have %q", name, t.text)
			}
		}
	}
	v := value{labels: labels, metrics: []string{name}}
	if p.peek().text == "[" {
		p.next()
		d := p.next()
		if d.kind != tDuration && d.kind != tVar {
			return value{}, fmt.Errorf("%s[...]: want a duration, have %q", name, d.text)
		}
		if err := p.expect("]"); err != nil {
			return value{}, err
		}
		v.rng = name
	}
	return v, nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
