package filesource

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"time"

	"github.com/rauta/rauta/gatewayapi"
)

// Defaults of a [Watcher].
const (
	// DefaultInterval is the time between two polls of the files.
	DefaultInterval = time.Second
	// DefaultHoldOff is how long the files must stay unchanged before a
	// change is loaded.
	DefaultHoldOff = 200 * time.Millisecond
	// DefaultMaxDelay bounds how long a change waits for the files to
	// settle.
	DefaultMaxDelay = 3 * time.Second
)

// Watcher polls a file or a directory (as [Load] reads it) and calls back
// with its objects whenever its content changes.
//
// It compares a digest of the names and contents of the files every
// Interval. A change is debounced: it is loaded once the files have stayed
// the same for HoldOff, so that an editor or a tool writing several files
// produces one reload, but never later than MaxDelay after it was first
// seen. A change that is undone before it is loaded causes no call.
//
// Files that fail to load are reported to OnError and logged once per
// content; nothing is called again until the files change, so the caller
// keeps serving what it had.
//
// A Watcher must not be copied after its first use.
type Watcher struct {
	// Path is the file or directory watched.
	Path string
	// Interval is the time between polls; zero means DefaultInterval.
	Interval time.Duration
	// HoldOff is how long the files must stay unchanged before a change
	// is loaded; zero means DefaultHoldOff.
	HoldOff time.Duration
	// MaxDelay bounds the wait for the files to settle, counted from when
	// a change was first seen; zero means DefaultMaxDelay.
	MaxDelay time.Duration
	// OnChange receives the objects of the files, first when Run starts
	// (if they load) and then after every change. It is called from Run's
	// goroutine.
	OnChange func(*gatewayapi.Resources)
	// OnError receives the error when the files fail to load, first when
	// Run starts and then after every change. It is called from Run's
	// goroutine.
	OnError func(error)
	// Logger receives a line per change and per error; nil means
	// slog.Default().
	Logger *slog.Logger

	// seeded, when set, is the digest of the content the caller already
	// loaded; Run then skips the initial load.
	seeded *[sha256.Size]byte
}

// snapshot is the content read at one poll.
type snapshot struct {
	files []file
	err   error
	sum   [sha256.Size]byte
}

func (w *Watcher) read() snapshot {
	files, err := readTree(w.Path)
	if err != nil {
		return snapshot{err: err, sum: sha256.Sum256([]byte("error\x00" + err.Error()))}
	}
	return snapshot{files: files, sum: hashFiles(files)}
}

// Run polls until ctx is done and returns ctx.Err().
func (w *Watcher) Run(ctx context.Context) error {
	interval := orDefault(w.Interval, DefaultInterval)
	holdOff := orDefault(w.HoldOff, DefaultHoldOff)
	maxDelay := orDefault(w.MaxDelay, DefaultMaxDelay)
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}

	var current [sha256.Size]byte
	if w.seeded != nil {
		current = *w.seeded
	} else {
		s := w.read()
		current = s.sum
		w.load(log, s, false)
	}

	timer := time.NewTimer(interval)
	defer timer.Stop()
	var (
		pending             bool
		pendingSum          [sha256.Size]byte
		firstSeen, lastSeen time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		s := w.read()
		now := time.Now()
		switch {
		case !pending && s.sum == current:
			// Nothing changed.
		case !pending:
			pending, pendingSum, firstSeen, lastSeen = true, s.sum, now, now
		case s.sum != pendingSum:
			pendingSum, lastSeen = s.sum, now // still changing
		}
		if pending && (now.Sub(lastSeen) >= holdOff || now.Sub(firstSeen) >= maxDelay) {
			pending = false
			if s.sum != current {
				current = s.sum
				w.load(log, s, true)
			}
		}
		next := interval
		if pending {
			next = min(lastSeen.Add(holdOff).Sub(now), firstSeen.Add(maxDelay).Sub(now))
			next = max(next, time.Millisecond)
		}
		timer.Reset(next)
	}
}

// load parses the files read and calls back.
func (w *Watcher) load(log *slog.Logger, s snapshot, changed bool) {
	err := s.err
	var res *gatewayapi.Resources
	if err == nil {
		res, err = parse(s.files)
	}
	if err != nil {
		log.Error("configuration files rejected; the previous configuration keeps serving", "path", w.Path, "error", err)
		if w.OnError != nil {
			w.OnError(err)
		}
		return
	}
	if changed {
		log.Info("configuration files changed", "path", w.Path, "files", len(s.files))
	}
	if w.OnChange != nil {
		w.OnChange(res)
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
