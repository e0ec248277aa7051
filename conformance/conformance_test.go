package conformance

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	// (comma-separated, or "all" for every extended feature of the
	// profile): a probe of what would pass, never a report to publish.
	envExtra = "RAUTA_CONFORMANCE_EXTRA_FEATURES"
)

// TestConformance runs the upstream Gateway API conformance suite
// (GATEWAY-HTTP profile) against rauta in the cluster the kubeconfig names,
// with the features rauta's GatewayClass status claims and the suite's
// default timeouts, and writes the ConformanceReport. scripts/conformance
// starts the cluster, the node agent and rauta and then runs this test.
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
			ConformanceProfiles: []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName},
		},
		Client:     c,
		Clientset:  cs,
		RestConfig: cfg,
		ManifestFS: []fs.FS{&upstream.Manifests},
	}
	extra := extraFeatures(os.Getenv(envExtra))
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

func writeReport(path string, report *confv1.ConformanceReport) error {
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

// extraFeatures parses envExtra: a comma-separated list, or "all" for
// every extended feature of the GATEWAY-HTTP profile.
func extraFeatures(v string) []features.FeatureName {
	if v == "all" {
		var out []features.FeatureName
		for _, set := range []sets.Set[features.Feature]{features.GatewayExtendedFeatures, features.HTTPRouteExtendedFeatures, features.BackendTLSPolicyCoreFeatures, features.BackendTLSPolicyExtendedFeatures} {
			for f := range set {
				out = append(out, f.Name)
			}
		}
		return out
	}
	var out []features.FeatureName
	for _, f := range splitList(v) {
		out = append(out, features.FeatureName(f))
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
