package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func jsonLines(t *testing.T, events []event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		line, err := json.Marshal(struct {
			Action, Package, Test, Output string
		}{e.Action, "github.com/rauta/rauta/conformance", e.Test, e.Output})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestParseTestLog(t *testing.T) {
	log := jsonLines(t, []event{
		{Action: "output", Test: "TestConformance/HTTPRouteRequestMirror", Output: "    mirror.go:80: \n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRequestMirror", Output: "        \tError Trace:\t/x/mirror.go:80\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRequestMirror", Output: "        \tError:      \tCondition never satisfied\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRequestMirror", Output: "        \tTest:       \tTestConformance/HTTPRouteRequestMirror\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRequestMirror", Output: "        \tMessages:   \tCouldn't find mirrored request in \"ns/pod\" logs\n"},
		{Action: "fail", Test: "TestConformance/HTTPRouteRequestMirror"},
		{Action: "output", Test: "TestConformance/GatewayInfrastructureMetadata", Output: "        \tError Trace:\t/x/infra.go:80\n        \tError:      \tReceived unexpected error:\n        \t            \texpected to find a Service\n        \tTest:       \tTestConformance/GatewayInfrastructureMetadata\n"},
		{Action: "fail", Test: "TestConformance/GatewayInfrastructureMetadata"},
		{Action: "output", Test: "TestConformance/GatewayModifyListeners/add", Output: "    helpers.go:10: expected listener status, got none\n"},
		{Action: "fail", Test: "TestConformance/GatewayModifyListeners/add"},
		{Action: "fail", Test: "TestConformance/GatewayModifyListeners"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/0_ok", Output: "    httproute-retry.go:192: 2026-11-27T12:40:25.529129104Z: Request passed\n"},
		{Action: "pass", Test: "TestConformance/HTTPRouteRetry/0_ok"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/1_fails", Output: "    httproute-retry.go:214: 2026-11-27T12:42:24.491032233Z: Making GET request to host  via http://127.1.27.24/retry\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/1_fails", Output: "    httproute-retry.go:223: 2026-11-27T12:42:24.491955205Z: Response expectation failed for request: {URL: x}  not ready yet: expected status code to be one of [500], got 503. CRes: &{503 20} (after 29.055411478s)\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/1_fails", Output: "    http.go:306: 2026-11-27T12:42:25.43617446Z: timeout while waiting after 30 attempts, 0/3 successes\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/1_fails", Output: "--- FAIL: TestConformance/HTTPRouteRetry/1_fails (30.00s)\n"},
		{Action: "output", Test: "TestConformance/HTTPRouteRetry/1_fails", Output: "    apply.go:279: 2026-11-27T12:42:25.436637168Z: Deleting retries HTTPRoute\n"},
		{Action: "fail", Test: "TestConformance/HTTPRouteRetry/1_fails"},
		{Action: "fail", Test: "TestConformance/HTTPRouteRetry"},
		{Action: "output", Test: "TestConformance/HTTPRouteSimpleSameNamespace", Output: "    ok\n"},
		{Action: "pass", Test: "TestConformance/HTTPRouteSimpleSameNamespace"},
		{Action: "fail", Test: "TestConformance"},
	}) + "not json\n"
	got, results, err := parseTestLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"HTTPRouteRequestMirror":        `Condition never satisfied — Couldn't find mirrored request in "ns/pod" logs`,
		"GatewayModifyListeners":        "add: helpers.go:10: expected listener status, got none",
		"GatewayInfrastructureMetadata": "Received unexpected error: expected to find a Service",
		"HTTPRouteRetry":                "1_fails: http.go:306: timeout while waiting after 30 attempts, 0/3 successes — last unmet expectation: expected status code to be one of [500], got 503.",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantResults := map[string]string{"GatewayInfrastructureMetadata": "fail", "HTTPRouteRequestMirror": "fail", "GatewayModifyListeners": "fail", "HTTPRouteRetry": "fail", "HTTPRouteSimpleSameNamespace": "pass"}
	if diff := cmp.Diff(wantResults, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

const report = `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
date: "2026-01-02T03:04:05Z"
gatewayAPIChannel: experimental
gatewayAPIVersion: v1.6.3
implementation:
  contact: [x]
  organization: rauta
  project: rauta
  url: https://example.com
  version: abc123
mode: default
profiles:
- name: GATEWAY-HTTP
  core:
    result: partial
    statistics:
      Failed: 1
      Passed: 36
      Skipped: 0
    failedTests:
    - HTTPRouteSimpleSameNamespace
  extended:
    result: success
    statistics:
      Failed: 0
      Passed: 10
      Skipped: 0
    supportedFeatures:
    - HTTPRouteQueryParamMatching
    unsupportedFeatures:
    - GatewayInfrastructurePropagation
  summary: ""
`

func TestRun(t *testing.T) {
	dir := t.TempDir()
	rp := filepath.Join(dir, "report.yaml")
	lp := filepath.Join(dir, "test.json")
	if err := os.WriteFile(rp, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lp, []byte(jsonLines(t, []event{
		{Action: "output", Test: "TestConformance/HTTPRouteSimpleSameNamespace", Output: "\tError:      \tReceived 404\n"},
		{Action: "fail", Test: "TestConformance/HTTPRouteSimpleSameNamespace"},
		{Action: "pass", Test: "TestConformance/HTTPRouteQueryParamMatching"},
	})), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	ok, err := run(&b, rp, lp, "12m")
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Error("a failed core test reported as success")
	}
	for _, want := range []string{
		"**Core: 36/37 passed** (1 failed, 0 skipped)",
		"**Extended: 10/10 tests passed**",
		"Not claimed (1): GatewayInfrastructurePropagation",
		"- `HTTPRouteSimpleSameNamespace` (core): Received 404",
		"wall time 12m",
		"**Claimed features whose tests all passed: 1/1**; failing: none",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	passing := strings.Replace(strings.Replace(report, "Failed: 1\n      Passed: 36", "Failed: 0\n      Passed: 37", 1), "    failedTests:\n    - HTTPRouteSimpleSameNamespace\n", "", 1)
	if err := os.WriteFile(rp, []byte(passing), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if ok, err := run(&b, rp, lp, ""); err != nil || !ok {
		t.Errorf("passing report: ok=%v err=%v\n%s", ok, err, b.String())
	}
}

const twoProfiles = `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
date: "2026-01-02T03:04:05Z"
gatewayAPIChannel: experimental
gatewayAPIVersion: v1.7.0
implementation:
  project: rauta
  version: abc123
mode: default
profiles:
- name: GATEWAY-GRPC
  core:
    result: success
    statistics:
      Failed: 0
      Passed: 2
      Skipped: 0
  extended:
    result: failure
    statistics:
      Failed: 1
      Passed: 0
      Skipped: 0
    failedTests:
    - BackendTLSPolicyGRPCRoute
    supportedFeatures:
    - BackendTLSPolicy
    - GatewayPort8080
    unsupportedFeatures:
    - GatewayAddressEmpty
- name: GATEWAY-HTTP
  core:
    result: success
    statistics:
      Failed: 0
      Passed: 2
      Skipped: 0
  extended:
    result: success
    statistics:
      Failed: 0
      Passed: 1
      Skipped: 0
    supportedFeatures:
    - BackendTLSPolicy
    - GatewayPort8080
    unsupportedFeatures:
    - GatewayAddressEmpty
`

func TestRunProfiles(t *testing.T) {
	dir := t.TempDir()
	rp := filepath.Join(dir, "report.yaml")
	lp := filepath.Join(dir, "test.json")
	write := func(report string, events []event) {
		t.Helper()
		if err := os.WriteFile(rp, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lp, []byte(jsonLines(t, events)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	events := []event{
		{Action: "pass", Test: "TestConformance/GatewayWithAttachedRoutes"},
		{Action: "pass", Test: "TestConformance/HTTPRouteSimpleSameNamespace"},
		{Action: "pass", Test: "TestConformance/GRPCExactMethodMatching"},
		{Action: "pass", Test: "TestConformance/BackendTLSPolicy"},
		{Action: "output", Test: "TestConformance/BackendTLSPolicyGRPCRoute", Output: "\tError:      \tconnection refused\n"},
		{Action: "fail", Test: "TestConformance/BackendTLSPolicyGRPCRoute"},
		{Action: "pass", Test: "TestConformance/GRPCRouteNamedRule"},
		{Action: "skip", Test: "TestConformance/TLSRouteSimpleSameNamespace"},
	}
	write(twoProfiles, events)
	var b bytes.Buffer
	ok, err := run(&b, rp, lp, "3m")
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Errorf("a failing test of a claimed feature in GATEWAY-GRPC reported as success:\n%s", b.String())
	}
	out := b.String()
	for _, want := range []string{
		"| GATEWAY-HTTP | 2/2 | 1/1 | 2 of 3 | core success, extended success |",
		"| GATEWAY-GRPC | 2/2 | 0/1 | 2 of 3 | core success, extended failure |",
		"## GATEWAY-GRPC\n\n- **Core: 2/2 passed**",
		// BackendTLSPolicy's HTTP test passed; in the GRPC profile only its
		// gRPC variant counts.
		"**Claimed features whose tests all passed: 0/1**; failing: BackendTLSPolicy (BackendTLSPolicyGRPCRoute); no test of this profile ran: GatewayPort8080",
		"**Claimed features whose tests all passed: 1/1**; failing: none; no test of this profile ran: GatewayPort8080",
		"## Tests in no profile (1)",
		"- `GRPCRouteNamedRule` (Gateway, GRPCRoute, GRPCRouteNamedRouteRule): passed",
		"## Failing tests (1)\n\n- `BackendTLSPolicyGRPCRoute` (extended): connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "## GATEWAY-HTTP") > strings.Index(out, "## GATEWAY-GRPC") {
		t.Errorf("GATEWAY-HTTP is not first:\n%s", out)
	}

	// A test in no profile that fails fails the run.
	passingGRPC := strings.Replace(strings.Replace(strings.Replace(twoProfiles, "result: failure", "result: success", 1), "Failed: 1\n      Passed: 0", "Failed: 0\n      Passed: 1", 1), "    failedTests:\n    - BackendTLSPolicyGRPCRoute\n", "", 1)
	events[4], events[5] = event{Action: "pass", Test: "TestConformance/BackendTLSPolicyGRPCRoute"}, event{Action: "fail", Test: "TestConformance/GRPCRouteRequestHeaderModifier"}
	write(passingGRPC, events)
	b.Reset()
	if ok, err := run(&b, rp, lp, ""); err != nil || ok {
		t.Errorf("a failing test in no profile: ok=%v err=%v, want a failed run\n%s", ok, err, b.String())
	}
	if want := "- `GRPCRouteRequestHeaderModifier` (Gateway, GRPCRoute, GRPCRouteRequestHeaderModifier): failed"; !strings.Contains(b.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, b.String())
	}
	events = slices.DeleteFunc(events, func(e event) bool { return e.Test == "TestConformance/GRPCRouteRequestHeaderModifier" })
	write(passingGRPC, events)
	b.Reset()
	if ok, err := run(&b, rp, lp, ""); err != nil || !ok {
		t.Errorf("every test passing: ok=%v err=%v\n%s", ok, err, b.String())
	}

	// A report without GATEWAY-HTTP is an error.
	write(twoProfiles[:strings.Index(twoProfiles, "- name: GATEWAY-HTTP")], events)
	if _, err := run(&b, rp, lp, ""); err == nil || !strings.Contains(err.Error(), "no GATEWAY-HTTP profile") {
		t.Errorf("report without GATEWAY-HTTP: err = %v", err)
	}
}
