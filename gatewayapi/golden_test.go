package gatewayapi

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rauta/rauta/proxy"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden *.out.yaml files")

// goldenOutput is what a golden file holds.
type goldenOutput struct {
	Config proxy.Config `json:"config"`
	Status Status       `json:"status"`
}

// TestGolden translates every testdata/*.in.yaml and compares the Config
// and Status with the matching *.out.yaml.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res, opts, err := decodeResources(data)
			if err != nil {
				t.Fatal(err)
			}
			r := Translate(res, opts)
			if !strings.HasPrefix(name, "gatewayclass") {
				// The feature list is checked by the gatewayclass cases
				// only, to keep the other files to the point.
				for i := range r.Status.GatewayClasses {
					r.Status.GatewayClasses[i].Status.SupportedFeatures = nil
				}
			}
			got, err := yaml.Marshal(goldenOutput{Config: r.Config, Status: r.Status})
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", out, diff)
			}
		})
	}
}
