package filters

import "testing"

func TestPassthrough(t *testing.T) {
	empty, err := Compile(nil, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one, err := Compile([]Spec{{Type: TypeRequestHeaderModifier, RequestHeaderModifier: &HeaderModifier{Remove: []string{"X"}}}}, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *Chain
		want bool
	}{{"nil", nil, true}, {"empty", empty, true}, {"error", ErrorChain(500), false}, {"one", one, false}} {
		if got := tc.c.Passthrough(); got != tc.want {
			t.Errorf("%s: Passthrough() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
