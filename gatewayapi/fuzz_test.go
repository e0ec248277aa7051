package gatewayapi

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzTranslate decodes arbitrary YAML into Resources and checks that
// Translate neither panics, nor mutates its input, nor gives different
// results for the same input.
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"basic-http", "listenerset-conflicts", "hostname-intersection", "filters", "addresses", "frontend-client-validation", "backend-client-certificate", "trafficpolicy-precedence", "trafficpolicy-conflicts", "backendpolicy-precedence", "xbackendtrafficpolicy", "session-persistence"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, opts, err := decodeResources(data)
		if err != nil {
			return
		}
		before := deepCopy(res)
		a := Translate(res, opts)
		if diff := cmp.Diff(before, res); diff != "" {
			t.Fatalf("Translate modified its input:\n%s", diff)
		}
		b := Translate(deepCopy(res), opts)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("Translate is not deterministic:\n%s", diff)
		}
	})
}
