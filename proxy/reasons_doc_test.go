package proxy

import (
	"os"
	"strings"
	"testing"
)

// TestDocReasons checks that docs/operating.md explains every reason label
// of rauta_gateway_responses_total and of the access log (the reasons are
// unexported: users meet only these label values).
func TestDocReasons(t *testing.T) {
	b, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for r := reason(1); r < numReasons; r++ {
		if !strings.Contains(doc, "`"+r.String()+"`") {
			t.Errorf("reason %q is not documented in docs/operating.md", r)
		}
	}
}
