// Command summarize writes the short summary of a conformance run: a table
// of the profiles that ran, then for each profile its core tests passed out
// of total, its extended tests, the extended features claimed and how their
// tests went, and the features not claimed; then the tests that ran but
// count in no profile, and every failing test with its first error line
// (taken from the `go test -json` output of the run).
//
// Usage:
//
//	summarize --report REPORT.yaml --test-log TEST.json [--runtime 12m3s] > SUMMARY.md
//
// It exits with status 1 when a core test of any profile, a test of a
// claimed feature, or a test that counts in no profile failed, or when the
// report holds no GATEWAY-HTTP profile.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/yaml"
)

// profiles are the Gateway profiles a report may hold, in the order the
// summary shows them. GATEWAY-HTTP must be in every report.
var profiles = []suite.ConformanceProfile{
	suite.GatewayHTTPConformanceProfile,
	suite.GatewayGRPCConformanceProfile,
	suite.GatewayTLSConformanceProfile,
	suite.GatewayTCPConformanceProfile,
	suite.GatewayUDPConformanceProfile,
}

func main() {
	reportPath := flag.String("report", "", "ConformanceReport YAML `path` (required)")
	logPath := flag.String("test-log", "", "`path` of the go test -json output of the run (required)")
	runtime := flag.String("runtime", "", "wall time of the run, printed as is")
	flag.Parse()
	ok, err := run(os.Stdout, *reportPath, *logPath, *runtime)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(w io.Writer, reportPath, logPath, runtime string) (bool, error) {
	if reportPath == "" || logPath == "" {
		return false, errors.New("--report and --test-log are required")
	}
	b, err := os.ReadFile(reportPath)
	if err != nil {
		return false, err
	}
	var report confv1.ConformanceReport
	if err := yaml.Unmarshal(b, &report); err != nil {
		return false, fmt.Errorf("%s: %w", reportPath, err)
	}
	f, err := os.Open(logPath)
	if err != nil {
		return false, err
	}
	defer f.Close()
	firstErrors, results, err := parseTestLog(f)
	if err != nil {
		return false, fmt.Errorf("%s: %w", logPath, err)
	}
	if !slices.ContainsFunc(report.ProfileReports, func(pr confv1.ProfileReport) bool { return pr.Name == string(suite.GatewayHTTPConformanceProfileName) }) {
		return false, fmt.Errorf("%s: no %s profile in the report", reportPath, suite.GatewayHTTPConformanceProfileName)
	}
	var prs []profileRun
	for _, pr := range report.ProfileReports {
		i := slices.IndexFunc(profiles, func(p suite.ConformanceProfile) bool { return string(p.Name) == pr.Name })
		if i < 0 {
			return false, fmt.Errorf("%s: profile %s is not a Gateway profile this summary knows", reportPath, pr.Name)
		}
		prs = append(prs, profileRun{report: pr, profile: profiles[i], order: i})
	}
	slices.SortFunc(prs, func(a, b profileRun) int { return cmp.Compare(a.order, b.order) })
	return write(w, &report, prs, firstErrors, results, tests.ConformanceTests, runtime), nil
}

// profileRun is one profile of the report with its definition.
type profileRun struct {
	report  confv1.ProfileReport
	profile suite.ConformanceProfile
	order   int
}

// inProfile reports whether a test counts in a profile: the suite's rule,
// every feature of the test is a core or extended feature of the profile.
func inProfile(t suite.ConformanceTest, p suite.ConformanceProfile) bool {
	for _, f := range t.Features {
		if !p.CoreFeatures.Has(f) && !p.ExtendedFeatures.Has(f) {
			return false
		}
	}
	return true
}

// write prints the summary and reports whether every core test, every test
// of a claimed feature and every test outside the profiles passed.
func write(w io.Writer, report *confv1.ConformanceReport, prs []profileRun, firstErrors, results map[string]string, all []suite.ConformanceTest, runtime string) bool {
	fmt.Fprintf(w, "# Gateway API conformance: %s %s\n\n", report.Implementation.Project, report.Implementation.Version)
	fmt.Fprintf(w, "Gateway API %s (%s channel); mode %s; run %s", report.GatewayAPIVersion, report.GatewayAPIChannel, report.Mode, report.Date)
	if runtime != "" {
		fmt.Fprintf(w, "; wall time %s (every profile in one run)", runtime)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| profile | core passed | extended tests passed | claimed extended features | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	ok := true
	for _, p := range prs {
		c := p.report.Core
		ext := "none ran"
		claimed := "0"
		result := string(c.Result)
		if e := p.report.Extended; e != nil {
			ext = fmt.Sprintf("%d/%d", e.Passed, e.Passed+e.Failed+e.Skipped)
			claimed = fmt.Sprintf("%d of %d", len(e.SupportedFeatures), len(e.SupportedFeatures)+len(e.UnsupportedFeatures))
			result = fmt.Sprintf("core %s, extended %s", c.Result, e.Result)
		}
		fmt.Fprintf(w, "| %s | %d/%d | %s | %s | %s |\n", p.report.Name, c.Passed, c.Passed+c.Failed+c.Skipped, ext, claimed, result)
	}

	var failed []string
	core := map[string]bool{}
	for _, p := range prs {
		pr := &p.report
		var inP []suite.ConformanceTest
		for _, t := range all {
			if inProfile(t, p.profile) {
				inP = append(inP, t)
			}
		}
		byFeature := featureResults(results, inP)
		fmt.Fprintf(w, "\n## %s\n\n", pr.Name)
		c := pr.Core
		coreTotal := c.Passed + c.Failed + c.Skipped
		fmt.Fprintf(w, "- **Core: %d/%d passed** (%d failed, %d skipped): %s\n", c.Passed, coreTotal, c.Failed, c.Skipped, c.Result)
		if c.Failed > 0 || c.Result == confv1.Failure {
			ok = false
		}
		failed = append(failed, c.FailedTests...)
		for _, n := range c.FailedTests {
			core[n] = true
		}
		if ext := pr.Extended; ext != nil {
			total := ext.Passed + ext.Failed + ext.Skipped
			fmt.Fprintf(w, "- **Extended: %d/%d tests passed** (%d failed, %d skipped) over %d claimed features: %s\n",
				ext.Passed, total, ext.Failed, ext.Skipped, len(ext.SupportedFeatures), ext.Result)
			fmt.Fprintf(w, "- Claimed features (%d): %s\n", len(ext.SupportedFeatures), orNone(ext.SupportedFeatures))
			var passedF, failedF, untested []string
			for _, f := range ext.SupportedFeatures {
				r := byFeature[f]
				switch {
				case len(r.failed) > 0:
					failedF = append(failedF, f+" ("+strings.Join(r.failed, ", ")+")")
				case len(r.passed) > 0:
					passedF = append(passedF, f)
				default:
					untested = append(untested, f)
				}
			}
			fmt.Fprintf(w, "- **Claimed features whose tests all passed: %d/%d**; failing: %s", len(passedF), len(ext.SupportedFeatures)-len(untested), orNone(failedF))
			if len(untested) > 0 {
				fmt.Fprintf(w, "; no test of this profile ran: %s", strings.Join(untested, ", "))
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "- Not claimed (%d): %s\n", len(ext.UnsupportedFeatures), orNone(ext.UnsupportedFeatures))
			failed = append(failed, ext.FailedTests...)
			if ext.Failed > 0 || ext.Result == confv1.Failure {
				ok = false
			}
		}
		if len(c.SkippedTests) > 0 {
			fmt.Fprintf(w, "- Core tests skipped: %s\n", strings.Join(c.SkippedTests, ", "))
		}
	}

	// Tests whose features lie outside every profile of the run still run
	// when those features are supported (v1.7.0's GATEWAY-GRPC does not list
	// the GRPCRoute extended features), but the report counts them nowhere.
	var outside []string
	for _, t := range all {
		res, ran := results[t.ShortName]
		if !ran || res == "skip" || slices.ContainsFunc(prs, func(p profileRun) bool { return inProfile(t, p.profile) }) {
			continue
		}
		names := make([]string, len(t.Features))
		for i, f := range t.Features {
			names[i] = string(f)
		}
		outside = append(outside, fmt.Sprintf("- `%s` (%s): %s", t.ShortName, strings.Join(names, ", "), map[string]string{"pass": "passed", "fail": "failed"}[res]))
		if res == "fail" {
			ok = false
			failed = append(failed, t.ShortName)
		}
	}
	if len(outside) > 0 {
		fmt.Fprintf(w, "\n## Tests in no profile (%d)\n\n", len(outside))
		fmt.Fprintln(w, "They ran because their features are supported, but no profile of this run lists all of their features, so the report counts them nowhere.")
		fmt.Fprintln(w)
		sort.Strings(outside)
		for _, l := range outside {
			fmt.Fprintln(w, l)
		}
	}

	fmt.Fprintln(w)
	sort.Strings(failed)
	failed = slices.Compact(failed) // a test can count in several profiles
	if len(failed) == 0 {
		fmt.Fprintln(w, "No test failed.")
		return ok
	}
	fmt.Fprintf(w, "## Failing tests (%d)\n\n", len(failed))
	for _, n := range failed {
		kind := "extended"
		if core[n] {
			kind = "core"
		}
		msg := firstErrors[n]
		if msg == "" {
			msg = "(no error line in the test log)"
		}
		fmt.Fprintf(w, "- `%s` (%s): %s\n", n, kind, msg)
	}
	return ok
}

// featureResult lists the tests of one feature that passed and failed.
type featureResult struct{ passed, failed []string }

// featureResults groups test results by the features the tests exercise.
func featureResults(results map[string]string, all []suite.ConformanceTest) map[string]featureResult {
	out := map[string]featureResult{}
	for _, t := range all {
		res, ok := results[t.ShortName]
		if !ok {
			continue
		}
		for _, f := range t.Features {
			r := out[string(f)]
			switch res {
			case "pass":
				r.passed = append(r.passed, t.ShortName)
			case "fail":
				r.failed = append(r.failed, t.ShortName)
			}
			out[string(f)] = r
		}
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// event is one line of `go test -json`.
type event struct {
	Action string
	Test   string
	Output string
}

// parseTestLog returns the result (pass, fail or skip) of every
// conformance test (a subtest of TestConformance) and, for every failed
// one, its first error: taken from the output of its first failing subtest
// when it has subtests, else from its own output.
func parseTestLog(r io.Reader) (firstErrors, results map[string]string, err error) {
	out := map[string][]string{} // by full test name
	var failedOrder []string     // full names, in the order they failed
	results = map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			continue
		}
		name, ok := strings.CutPrefix(e.Test, "TestConformance/")
		if !ok {
			continue
		}
		switch e.Action {
		case "output":
			out[name] = append(out[name], e.Output)
		case "fail":
			failedOrder = append(failedOrder, name)
		}
		if !strings.Contains(name, "/") && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			results[name] = e.Action
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	res := map[string]string{}
	for _, name := range failedOrder {
		top, _, _ := strings.Cut(name, "/")
		if _, done := res[top]; done {
			continue
		}
		// The first failure recorded under a test is its earliest failing
		// subtest (or the test itself when it has none).
		msg := firstError(out[name])
		if msg == "" && name != top {
			msg = firstError(out[top])
		}
		if name != top {
			msg = strings.TrimPrefix(name, top+"/") + ": " + msg
		}
		res[top] = msg
	}
	return res, results, nil
}

// firstError finds the error in a failed test's output lines: the first
// testify "Error:" block (with its "Messages:" line when there is one);
// otherwise the last line logged before the test's "--- FAIL", with the
// last unmet expectation of the suite's request retries ("not ready yet:
// ...") when there is one.
func firstError(lines []string) string {
	// Output may arrive in pieces; join and split again.
	all := strings.Split(strings.Join(lines, ""), "\n")
	for i, l := range all {
		t := strings.TrimSpace(l)
		if msg, ok := strings.CutPrefix(t, "Error:"); ok {
			msg = strings.TrimSpace(msg)
			// testify continues a message on indented lines (the error of
			// "Received unexpected error:"), names the test, and adds
			// "Messages:" with the caller's text.
			inMessage := true
			for j := i + 1; j < len(all) && j < i+30; j++ {
				n := strings.TrimSpace(all[j])
				if m, ok := strings.CutPrefix(n, "Messages:"); ok {
					msg += " — " + strings.TrimSpace(m)
					break
				}
				if strings.HasPrefix(n, "Error Trace:") || strings.HasPrefix(n, "---") {
					break
				}
				if strings.HasPrefix(n, "Test:") {
					inMessage = false
					continue
				}
				if inMessage && n != "" {
					msg += " " + n
				}
			}
			return clip(msg)
		}
	}
	var last, expectation string
	for _, l := range all {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--- FAIL") {
			break
		}
		loc, msg, ok := logLine(t)
		if !ok || strings.HasPrefix(msg, "Making ") || strings.HasPrefix(msg, "Deleting ") || strings.HasPrefix(msg, "Applying ") {
			continue
		}
		if _, after, ok := strings.Cut(msg, "not ready yet: "); ok {
			if i := strings.Index(after, " CRes:"); i >= 0 {
				after = after[:i]
			}
			expectation = strings.TrimSpace(after)
			continue
		}
		last = loc + ": " + msg
	}
	switch {
	case last != "" && expectation != "":
		return clip(last + " — last unmet expectation: " + expectation)
	case last != "":
		return clip(last)
	case expectation != "":
		return clip("last unmet expectation: " + expectation)
	}
	return ""
}

// logLine splits a t.Log line "file.go:123: [timestamp: ]message".
func logLine(t string) (loc, msg string, ok bool) {
	i := strings.Index(t, ".go:")
	if i <= 0 || strings.ContainsAny(t[:i], " \t") {
		return "", "", false
	}
	rest := t[i+len(".go:"):]
	j := strings.Index(rest, ": ")
	if j < 0 {
		return "", "", false
	}
	loc, msg = t[:i+len(".go:")+j], rest[j+2:]
	// The suite's tlog prefixes an RFC 3339 timestamp.
	if k := strings.Index(msg, "Z: "); k >= 19 && k <= 40 && strings.Count(msg[:k], ":") == 2 {
		msg = msg[k+3:]
	}
	return loc, msg, true
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
