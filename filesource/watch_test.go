package filesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rauta/rauta/gatewayapi"
)

// event is one callback of a Watcher.
type event struct {
	at    time.Time
	route string // name of the first HTTPRoute, on OnChange
	err   error  // on OnError
}

// startWatcher runs w on a path and returns the channel of its callbacks.
func startWatcher(t *testing.T, w *Watcher) <-chan event {
	t.Helper()
	events := make(chan event, 100)
	w.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w.OnChange = func(r *gatewayapi.Resources) {
		name := ""
		if len(r.HTTPRoutes) > 0 {
			name = r.HTTPRoutes[0].Name
		}
		events <- event{at: time.Now(), route: name}
	}
	w.OnError = func(err error) { events <- event{at: time.Now(), err: err} }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return events
}

func route(name string) string { return routeHeader[:len(routeHeader)-len("foo\n")] + name + "\n" }

// writeFile replaces path's content at once (a new file renamed over it),
// so that a poll cannot see the file truncated but not yet written: on a
// loaded machine that half-written state can outlast the hold-off and be
// reported as a configuration of its own.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path)+".partial")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, events <-chan event, timeout time.Duration) event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(timeout):
		t.Fatalf("no callback within %v", timeout)
		return event{}
	}
}

func expectNone(t *testing.T, events <-chan event, d time.Duration) {
	t.Helper()
	select {
	case e := <-events:
		t.Fatalf("unexpected callback %+v", e)
	case <-time.After(d):
	}
}

func TestWatcherChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, route("v1"))
	events := startWatcher(t, &Watcher{Path: dir, Interval: 10 * time.Millisecond, HoldOff: 30 * time.Millisecond})
	if e := next(t, events, 2*time.Second); e.route != "v1" {
		t.Fatalf("initial callback %+v, want route v1", e)
	}
	expectNone(t, events, 100*time.Millisecond) // nothing changed

	writeFile(t, path, route("v2"))
	if e := next(t, events, 2*time.Second); e.route != "v2" {
		t.Fatalf("callback %+v, want route v2", e)
	}
	// A new file in the directory is a change too.
	writeFile(t, filepath.Join(dir, "0-first.yaml"), route("v3"))
	if e := next(t, events, 2*time.Second); e.route != "v3" {
		t.Fatalf("callback %+v, want route v3", e)
	}
	// So is a removal.
	if err := os.Remove(filepath.Join(dir, "0-first.yaml")); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events, 2*time.Second); e.route != "v2" {
		t.Fatalf("callback %+v, want route v2", e)
	}
}

func TestWatcherDebounce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, route("v0"))
	const holdOff = 250 * time.Millisecond
	events := startWatcher(t, &Watcher{Path: dir, Interval: 10 * time.Millisecond, HoldOff: holdOff, MaxDelay: 10 * time.Second})
	next(t, events, 2*time.Second)

	// Ten writes 20ms apart, each well within the hold-off of the one
	// before, make one reload, with the last content, after the writes.
	var last time.Time
	for i := 1; i <= 10; i++ {
		writeFile(t, path, route(fmt.Sprintf("v%d", i)))
		last = time.Now()
		time.Sleep(20 * time.Millisecond)
	}
	e := next(t, events, 5*time.Second)
	if e.route != "v10" {
		t.Fatalf("callback %+v, want route v10", e)
	}
	if wait := e.at.Sub(last); wait < holdOff {
		t.Errorf("reloaded %v after the last write, before the hold-off of %v", wait, holdOff)
	}
	expectNone(t, events, 2*holdOff)

	// A change undone before the hold-off passes causes no reload.
	writeFile(t, path, route("v11"))
	time.Sleep(30 * time.Millisecond)
	writeFile(t, path, route("v10"))
	expectNone(t, events, 3*holdOff)
}

func TestWatcherMaxDelay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, route("v0"))
	events := startWatcher(t, &Watcher{Path: dir, Interval: 10 * time.Millisecond, HoldOff: time.Second, MaxDelay: 100 * time.Millisecond})
	next(t, events, 2*time.Second)

	// Files that never settle are still loaded, every MaxDelay or so.
	start := time.Now()
	stop := start.Add(700 * time.Millisecond)
	for i := 1; time.Now().Before(stop); i++ {
		writeFile(t, path, route(fmt.Sprintf("v%d", i)))
		time.Sleep(15 * time.Millisecond)
	}
	n := 0
	for loop := true; loop; {
		select {
		case e := <-events:
			if e.at.Before(stop) {
				n++
			}
		default:
			loop = false
		}
	}
	if n < 2 {
		t.Errorf("%d reloads while the files changed for 700ms with MaxDelay 100ms, want at least 2", n)
	}
}

func TestWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, route("good"))
	events := startWatcher(t, &Watcher{Path: dir, Interval: 10 * time.Millisecond, HoldOff: 30 * time.Millisecond})
	next(t, events, 2*time.Second)

	writeFile(t, path, route("good")+"spek: {}\n")
	e := next(t, events, 2*time.Second)
	if !errors.Is(e.err, ErrUnknownField) {
		t.Fatalf("callback %+v, want an ErrUnknownField error", e)
	}
	// The error is reported once, not at every poll.
	expectNone(t, events, 150*time.Millisecond)

	writeFile(t, path, route("fixed"))
	if e := next(t, events, 2*time.Second); e.route != "fixed" {
		t.Fatalf("callback %+v, want route fixed", e)
	}

	// A path that disappears is an error; when it comes back it loads.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events, 2*time.Second); !errors.Is(e.err, os.ErrNotExist) {
		t.Fatalf("callback %+v, want ErrNotExist", e)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events, 2*time.Second); e.route != "fixed" {
		t.Fatalf("callback %+v, want route fixed", e)
	}
}

func TestWatcherInitialError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), "kind: [")
	events := startWatcher(t, &Watcher{Path: dir, Interval: 10 * time.Millisecond, HoldOff: 20 * time.Millisecond})
	if e := next(t, events, 2*time.Second); !errors.Is(e.err, ErrSyntax) {
		t.Fatalf("initial callback %+v, want ErrSyntax", e)
	}
}
