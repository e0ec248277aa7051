package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/rauta/rauta/upstream"
)

// TestMaglevRemovalMovesOnlyItsKeys is the consistency promise of the
// Maglev load balancer through a real listener and ten real endpoints:
// while the endpoints are stable every key keeps its endpoint; when one of
// the ten is removed, its own keys move, and of the others no more than the
// table's own disruption for this size (measured on the tables the proxy
// builds, with a margin for sampling).
func TestMaglevRemovalMovesOnlyItsKeys(t *testing.T) {
	const n, keys = 10, 1500
	var addrs []string
	for i := range n {
		addrs = append(addrs, addrOf(echoBackend(t, fmt.Sprint("e", i))))
	}
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"m": addrs}, Rule{Backends: []BackendRef{{Backend: "m", Weight: 1}}})
	cfg.Backends[0].LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "X-User"}}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	owner := func(k int) string {
		code, body, _ := get(t, client, base+"/", "X-User", fmt.Sprint("user-", k))
		if code != http.StatusOK {
			t.Fatalf("user-%d: status %d", k, code)
		}
		return body
	}
	before := make([]string, keys)
	for k := range keys {
		before[k] = owner(k)
	}
	for k := 0; k < keys; k += 7 { // stable endpoints: no key moves
		if got := owner(k); got != before[k] {
			t.Fatalf("user-%d moved from %s to %s with no change of endpoints", k, before[k], got)
		}
	}

	tf := p.snap.Load().backends["m"].up.Table().Maglev()

	// Remove e3.
	const gone = "e3"
	var rest []upstream.Endpoint
	for i, a := range addrs {
		if fmt.Sprint("e", i) != gone {
			rest = append(rest, upstream.Endpoint{Address: a})
		}
	}
	if err := p.UpdateEndpoints("m", rest); err != nil {
		t.Fatal(err)
	}
	var own, others, moved int
	for k := range keys {
		got := owner(k)
		switch {
		case before[k] == gone:
			own++
			if got == gone {
				t.Fatalf("user-%d still reaches the removed endpoint", k)
			}
		case got != before[k]:
			others++
			moved++
		default:
			others++
		}
	}

	// The table's disruption: the share of entries not owned by the
	// removed endpoint that change owner, between the tables the proxy
	// built before and after.
	tl := p.snap.Load().backends["m"].up.Table().Maglev()
	m := tf.Size()
	removed := addrs[3]
	var kept, changed int
	for e := range m {
		was := tf.Backend(tf.Pick(uint64(e))).Name
		if was == removed {
			continue
		}
		kept++
		if tl.Backend(tl.Pick(uint64(e))).Name != was {
			changed++
		}
	}
	disruption := float64(changed) / float64(kept)
	got := float64(moved) / float64(others)
	t.Logf("M=%d: %d keys of the removed endpoint moved; %d of %d others moved (%.3f); the table's disruption %.3f", m, own, moved, others, got, disruption)
	if own == 0 {
		t.Fatal("no key was on the removed endpoint")
	}
	if got > disruption+0.03 {
		t.Errorf("%.3f of the other keys moved, more than the table's disruption %.3f (+0.03)", got, disruption)
	}
}
