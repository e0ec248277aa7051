package conformance

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/apis/v1alpha2"
	"sigs.k8s.io/gateway-api/apis/v1alpha3"
	xv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
	upstream "sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/config"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/gatewayapi"
)

// Environment read by TestConformance; scripts/conformance sets them.
const (
	envKubeconfig = "RAUTA_CONFORMANCE_KUBECONFIG"  // required, else the test skips
	envReport     = "RAUTA_CONFORMANCE_REPORT"      // path of the report YAML
	envClass      = "RAUTA_CONFORMANCE_CLASS"       // GatewayClass name, default "rauta"
	envVersion    = "RAUTA_CONFORMANCE_VERSION"     // implementation version in the report
	envRunTest    = "RAUTA_CONFORMANCE_RUN_TEST"    // run only this test (debugging)
	envSkipTests  = "RAUTA_CONFORMANCE_SKIP_TESTS"  // comma-separated tests to skip
	envUsable     = "RAUTA_CONFORMANCE_USABLE_IP"   // a static address rauta can bind
	envUnusable   = "RAUTA_CONFORMANCE_UNUSABLE_IP" // a static address it must refuse
	envDebug      = "RAUTA_CONFORMANCE_DEBUG"       // "1": log requests and responses
	// envExtra lists features to test beyond those rauta claims
	// (comma-separated; "all" adds every feature of the profiles that
	// run): a probe of what would pass, never a report to publish.
	envExtra = "RAUTA_CONFORMANCE_EXTRA_FEATURES"
)

// TestConformance runs the upstream Gateway API conformance suite against
// rauta in the cluster the kubeconfig names, in one run: GATEWAY-HTTP and
// the profile of every other route kind rauta's GatewayClass status claims
// (see profilesFor), with the features it claims and the suite's default
// timeouts, and writes one ConformanceReport holding every profile.
// scripts/conformance starts the cluster, the node agent and rauta and then
// runs this test.
func TestConformance(t *testing.T) {
	kubeconfig := os.Getenv(envKubeconfig)
	if kubeconfig == "" {
		t.Skipf("skipping: %s is not set; scripts/conformance runs this test against a local cluster", envKubeconfig)
	}
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	for _, install := range []func(*runtime.Scheme) error{v1alpha3.Install, v1alpha2.Install, xv1alpha1.Install, gatewayv1.Install, apiextensionsv1.AddToScheme} {
		if err := install(c.Scheme()); err != nil {
			t.Fatalf("scheme: %v", err)
		}
	}
	cs, err := clientset.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}

	class := envOr(envClass, "rauta")
	timeouts := config.DefaultTimeoutConfig()
	claimed := ensureGatewayClass(t, c, class, gatewayapi.DefaultControllerName, timeouts.GWCMustBeAccepted)
	t.Logf("GatewayClass %s claims %d features: %s", class, len(claimed), strings.Join(claimed, ", "))

	extra, err := extraFeatures(os.Getenv(envExtra), claimed)
	if err != nil {
		t.Fatalf("%s: %v", envExtra, err)
	}
	profiles := profilesFor(append(slices.Clone(claimed), featureNames(extra)...))
	t.Logf("profiles: %v", profiles)

	opts := suite.ConformanceOptions{
		ConfigurableOptions: suite.ConfigurableOptions{
			GatewayClassName:     class,
			Debug:                os.Getenv(envDebug) == "1",
			CleanupBaseResources: true,
			CleanupTestResources: true,
			TimeoutConfig:        timeouts,
			SkipTests:            splitList(os.Getenv(envSkipTests)),
			RunTest:              os.Getenv(envRunTest),
			Mode:                 "default",
			Implementation: confv1.Implementation{
				Organization: "rauta",
				Project:      "rauta",
				URL:          "https://github.com/rauta/rauta",
				Version:      envOr(envVersion, "dev"),
				Contact:      []string{"https://github.com/rauta/rauta/issues"},
			},
			ConformanceProfiles: profiles,
		},
		Client:     c,
		Clientset:  cs,
		RestConfig: cfg,
		ManifestFS: []fs.FS{&upstream.Manifests},
	}
	if opts.RunTest != "" || len(extra) > 0 {
		// The suite infers features from the GatewayClass only for full
		// runs; a single test or a probe gets the list explicitly.
		for _, f := range claimed {
			opts.SupportedFeatures = append(opts.SupportedFeatures, features.FeatureName(f))
		}
		opts.SupportedFeatures = append(opts.SupportedFeatures, extra...)
		if len(extra) > 0 {
			t.Logf("probing features rauta does not claim: %v", extra)
		}
	}
	if ip := os.Getenv(envUsable); ip != "" {
		opts.UsableNetworkAddresses = []gatewayv1.GatewaySpecAddress{{Type: ptr(gatewayv1.IPAddressType), Value: ip}}
	}
	if ip := os.Getenv(envUnusable); ip != "" {
		opts.UnusableNetworkAddresses = []gatewayv1.GatewaySpecAddress{{Type: ptr(gatewayv1.IPAddressType), Value: ip}}
	}

	s, err := suite.NewConformanceTestSuite(opts)
	if err != nil {
		t.Fatalf("conformance suite: %v", err)
	}
	// Parallel tests run after this function returns, and Run's own cleanup
	// (registered later, so run earlier) ends the run: the report is made
	// in a cleanup registered before Run.
	if path := os.Getenv(envReport); path != "" {
		t.Cleanup(func() {
			report, err := s.Report()
			if err != nil {
				t.Errorf("report: %v", err)
				return
			}
			if err := writeReport(path, report); err != nil {
				t.Errorf("report: %v", err)
				return
			}
			t.Logf("report written to %s", path)
		})
	}
	s.Setup(t, tests.ConformanceTests)
	if err := s.Run(t, tests.ConformanceTests); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// ensureGatewayClass creates the GatewayClass when it does not exist and
// waits until rauta has accepted it and listed its supported features,
// which it returns.
func ensureGatewayClass(t *testing.T, c client.Client, name, controller string, timeout time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	gc := &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gatewayv1.GatewayClassSpec{
			ControllerName: gatewayv1.GatewayController(controller),
			Description:    ptr("rauta, under the Gateway API conformance suite"),
		},
	}
	if err := c.Create(ctx, gc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("GatewayClass %s: %v", name, err)
	}
	for {
		got := &gatewayv1.GatewayClass{}
		err := c.Get(ctx, client.ObjectKey{Name: name}, got)
		if err == nil && accepted(got) && len(got.Status.SupportedFeatures) > 0 {
			out := make([]string, len(got.Status.SupportedFeatures))
			for i, f := range got.Status.SupportedFeatures {
				out[i] = string(f.Name)
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GatewayClass %s was not accepted with supported features within %v (last error: %v); is rauta running against this cluster?", name, timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func accepted(gc *gatewayv1.GatewayClass) bool {
	for _, cond := range gc.Status.Conditions {
		if cond.Type == string(gatewayv1.GatewayClassConditionStatusAccepted) {
			return cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gc.Generation
		}
	}
	return false
}

// profileRouteKinds names, for each Gateway profile beside GATEWAY-HTTP,
// the route kind whose claim makes TestConformance run it.
var profileRouteKinds = []struct {
	profile suite.ConformanceProfileName
	kind    features.FeatureName
}{
	{suite.GatewayGRPCConformanceProfileName, features.SupportGRPCRoute},
	{suite.GatewayTLSConformanceProfileName, features.SupportTLSRoute},
	{suite.GatewayTCPConformanceProfileName, features.SupportTCPRoute},
	{suite.GatewayUDPConformanceProfileName, features.SupportUDPRoute},
}

// profilesFor returns the profiles to run for a set of supported features:
// GATEWAY-HTTP always, and GATEWAY-GRPC, -TLS, -TCP and -UDP when
// GRPCRoute, TLSRoute, TCPRoute and UDPRoute are among the features, in
// that order (the order of the report's profiles).
func profilesFor(supported []string) []suite.ConformanceProfileName {
	out := []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName}
	for _, p := range profileRouteKinds {
		if slices.Contains(supported, string(p.kind)) {
			out = append(out, p.profile)
		}
	}
	return out
}

// profileFeatures returns every feature a run of the profile can test: its
// core and extended features and, for GATEWAY-GRPC, the extended GRPCRoute
// features, which v1.7.0's profile does not list although the suite has
// tests for them (they run when claimed and count in no profile's figures).
func profileFeatures(name suite.ConformanceProfileName) []features.FeatureName {
	var p suite.ConformanceProfile
	switch name {
	case suite.GatewayHTTPConformanceProfileName:
		p = suite.GatewayHTTPConformanceProfile
	case suite.GatewayGRPCConformanceProfileName:
		p = suite.GatewayGRPCConformanceProfile
	case suite.GatewayTLSConformanceProfileName:
		p = suite.GatewayTLSConformanceProfile
	case suite.GatewayTCPConformanceProfileName:
		p = suite.GatewayTCPConformanceProfile
	case suite.GatewayUDPConformanceProfileName:
		p = suite.GatewayUDPConformanceProfile
	default:
		return nil
	}
	set := p.CoreFeatures.Union(p.ExtendedFeatures)
	if name == suite.GatewayGRPCConformanceProfileName {
		set = set.Union(features.SetsToNamesSet(features.GRPCRouteExtendedFeatures))
	}
	return sets.List(set)
}

// profileOrder is the order of the profiles in the written report.
func profileOrder(name string) int {
	if name == string(suite.GatewayHTTPConformanceProfileName) {
		return 0
	}
	for i, p := range profileRouteKinds {
		if name == string(p.profile) {
			return i + 1
		}
	}
	return len(profileRouteKinds) + 1
}

func writeReport(path string, report *confv1.ConformanceReport) error {
	// The suite lists profiles in map order; a fixed order keeps the
	// committed report's diffs readable.
	slices.SortStableFunc(report.ProfileReports, func(a, b confv1.ProfileReport) int {
		return cmp.Or(profileOrder(a.Name)-profileOrder(b.Name), strings.Compare(a.Name, b.Name))
	})
	b, err := yaml.Marshal(report)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// extraFeatures parses envExtra: a comma-separated list of feature names
// of any Gateway profile (route kinds such as GRPCRoute or TLSRoute add
// their profile to the run), where "all" stands for every feature of every
// profile that runs: GATEWAY-HTTP, those of the claimed route kinds and
// those of the route kinds in the list. Claimed features are left out of
// the result; a name the suite does not know is an error.
func extraFeatures(v string, claimed []string) ([]features.FeatureName, error) {
	var out []features.FeatureName
	all := false
	for _, f := range splitList(v) {
		if f == "all" {
			all = true
			continue
		}
		if features.GetFeature(features.FeatureName(f)).Name == "" {
			return nil, fmt.Errorf("unknown feature %q (names as in sigs.k8s.io/gateway-api/pkg/features, e.g. GRPCRouteNamedRouteRule)", f)
		}
		out = append(out, features.FeatureName(f))
	}
	if all {
		for _, p := range profilesFor(append(slices.Clone(claimed), featureNames(out)...)) {
			out = append(out, profileFeatures(p)...)
		}
	}
	out = slices.DeleteFunc(out, func(f features.FeatureName) bool { return slices.Contains(claimed, string(f)) })
	slices.Sort(out)
	return slices.Compact(out), nil
}

func featureNames(fs []features.FeatureName) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestProfilesFor(t *testing.T) {
	for _, tc := range []struct {
		supported []string
		want      []suite.ConformanceProfileName
	}{
		{nil, []suite.ConformanceProfileName{"GATEWAY-HTTP"}},
		{[]string{"Gateway", "HTTPRoute", "BackendTLSPolicy"}, []suite.ConformanceProfileName{"GATEWAY-HTTP"}},
		{[]string{"GRPCRoute", "HTTPRoute"}, []suite.ConformanceProfileName{"GATEWAY-HTTP", "GATEWAY-GRPC"}},
		{[]string{"UDPRoute", "TCPRoute", "TLSRoute", "GRPCRoute"}, []suite.ConformanceProfileName{"GATEWAY-HTTP", "GATEWAY-GRPC", "GATEWAY-TLS", "GATEWAY-TCP", "GATEWAY-UDP"}},
		// An extended feature of a route kind does not select its profile.
		{[]string{"GRPCRouteNamedRouteRule", "TLSRouteModeTerminate"}, []suite.ConformanceProfileName{"GATEWAY-HTTP"}},
	} {
		if got := profilesFor(tc.supported); !slices.Equal(got, tc.want) {
			t.Errorf("profilesFor(%v) = %v, want %v", tc.supported, got, tc.want)
		}
	}
}

func TestExtraFeatures(t *testing.T) {
	claimed := []string{"Gateway", "HTTPRoute", "HTTPRouteCORS", "ReferenceGrant"}
	got, err := extraFeatures(" GRPCRoute, GRPCRouteNamedRouteRule,HTTPRouteCORS,TLSRouteModeTerminate,TCPRoute,UDPRoute ", claimed)
	if err != nil {
		t.Fatal(err)
	}
	want := []features.FeatureName{"GRPCRoute", "GRPCRouteNamedRouteRule", "TCPRoute", "TLSRouteModeTerminate", "UDPRoute"}
	if !slices.Equal(got, want) {
		t.Errorf("list: got %v, want %v (claimed ones left out)", got, want)
	}
	if _, err := extraFeatures("GRPCRoute,GRPCRouteNamedRule", claimed); err == nil || !strings.Contains(err.Error(), `"GRPCRouteNamedRule"`) {
		t.Errorf("a misspelt feature: err = %v, want one naming it", err)
	}

	// "all" with the GRPC profile selected: its GRPCRoute features (also
	// those v1.7.0's profile does not list), the HTTP profile's, and
	// nothing of the TLS profile.
	got, err = extraFeatures("all", append(slices.Clone(claimed), "GRPCRoute"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []features.FeatureName{"GRPCRouteNamedRouteRule", "GRPCRouteRequestHeaderModifier", "HTTPRouteRequestMirror", "BackendTLSPolicy"} {
		if !slices.Contains(got, f) {
			t.Errorf("all: %s missing from %v", f, got)
		}
	}
	for _, f := range []features.FeatureName{"GRPCRoute", "HTTPRouteCORS", "TLSRoute", "TLSRouteModeTerminate", "TCPRoute"} {
		if slices.Contains(got, f) {
			t.Errorf("all: %s in %v", f, got)
		}
	}
	got, err = extraFeatures("all,TLSRoute", claimed)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []features.FeatureName{"TLSRoute", "TLSRouteModeTerminate", "TLSRouteModeMixed", "HTTPRouteRequestMirror"} {
		if !slices.Contains(got, f) {
			t.Errorf("all,TLSRoute: %s missing from %v", f, got)
		}
	}
	if slices.Contains(got, "GRPCRouteNamedRouteRule") {
		t.Errorf("all,TLSRoute: GRPC feature in %v", got)
	}
}

func TestWriteReportOrdersProfiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.yaml")
	r := &confv1.ConformanceReport{ProfileReports: []confv1.ProfileReport{{Name: "GATEWAY-TCP"}, {Name: "GATEWAY-HTTP"}, {Name: "GATEWAY-GRPC"}}}
	if err := writeReport(path, r); err != nil {
		t.Fatal(err)
	}
	var back confv1.ConformanceReport
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range back.ProfileReports {
		names = append(names, p.Name)
	}
	if want := []string{"GATEWAY-HTTP", "GATEWAY-GRPC", "GATEWAY-TCP"}; !slices.Equal(names, want) {
		t.Errorf("profiles in the report: %v, want %v", names, want)
	}
}
