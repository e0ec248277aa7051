//go:build unix

package h2server

import (
	"bytes"
	"net/http"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// cpuTime is the CPU time (user and system) the test process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestBlockedStreamSleeps checks that a response blocked by flow control
// costs no CPU while it waits: the handler, its buffer full, and the
// writer, with no window to send in, both sleep until a WINDOW_UPDATE
// (they used to wake each other in turn, burning a core per blocked
// stream). The WINDOW_UPDATE then lets the whole body through.
func TestBlockedStreamSleeps(t *testing.T) {
	const size = 1 << 20
	body := bytes.Repeat([]byte("x"), size)
	ts := startServer(t, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for b := body; len(b) > 0; b = b[32<<10:] {
			if _, err := w.Write(b[:32<<10]); err != nil {
				return
			}
		}
	}))
	rc := dialRaw(t, ts.addr)
	const window = 16 << 10
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	rc.request(1, true, get("/")...)
	got := 0
	readData := func(until int) {
		t.Helper()
		for got < until {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d bytes: %v", got, err)
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
				got += len(d.Data())
			}
		}
	}
	readData(window)
	// The handler has filled the stream's buffer by now and waits; the
	// writer has nothing it may send.
	time.Sleep(100 * time.Millisecond)
	before := cpuTime(t)
	time.Sleep(500 * time.Millisecond)
	if used := cpuTime(t) - before; used > 100*time.Millisecond {
		t.Errorf("%v of CPU used in 500ms while the only stream waited for a WINDOW_UPDATE; want next to none", used)
	}
	rc.fr.WriteWindowUpdate(1, size)
	rc.fr.WriteWindowUpdate(0, size)
	readData(size)
	if got != size {
		t.Errorf("read %d body bytes; want %d", got, size)
	}
}
