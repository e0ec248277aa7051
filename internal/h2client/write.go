package h2client

import (
	"fmt"
	"runtime"
)

// wbufWriter is the io.Writer under the connection's framer: it appends to
// the pending buffer (the connection's lock is held).
type wbufWriter Conn

func (w *wbufWriter) Write(p []byte) (int, error) {
	w.wbuf = append(w.wbuf, p...)
	w.queued += int64(len(p))
	return len(p), nil
}

// flushLocked writes the pending buffer unless a write is in progress
// (whose writer takes it next). With async, or after maxInlineRounds
// rounds, the writing continues in a goroutine of its own.
func (c *Conn) flushLocked(async bool) {
	if c.writing || len(c.wbuf) == 0 || c.closed {
		return
	}
	c.writing = true
	if async {
		go c.writeRounds(-1)
		return
	}
	// Let the goroutines about to queue frames of their own (requests
	// that arrived together) do so first: they find a write in progress,
	// and their frames share this one.
	c.mu.Unlock()
	runtime.Gosched()
	c.mu.Lock()
	c.writeRoundsLocked(maxInlineRounds)
}

func (c *Conn) writeRounds(n int) {
	c.mu.Lock()
	c.writeRoundsLocked(n)
	c.mu.Unlock()
}

// writeRoundsLocked writes the pending buffer, round after round, until
// it is empty; n bounds the rounds (negative: no bound), after which a
// goroutine continues. c.writing is set on entry.
func (c *Conn) writeRoundsLocked(n int) {
	for round := 0; len(c.wbuf) > 0 && !c.closed; round++ {
		if n >= 0 && round == n {
			go c.writeRounds(-1)
			return
		}
		buf := c.wbuf
		c.wbuf = c.spare[:0]
		c.mu.Unlock()
		w, err := c.nc.Write(buf)
		c.mu.Lock()
		c.sent += int64(w)
		c.spare = buf[:0]
		if err != nil {
			c.closeLocked(fmt.Errorf("h2client: write: %w", err))
			break
		}
	}
	c.writing = false
}
