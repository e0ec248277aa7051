package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Container logs are kept as the kubelet's CRI runtimes keep them: one file
// per container instance, one line per record,
//
//	<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <message>
//
// where P marks a partial record (a line longer than maxLogLine, continued
// by the next record) and F a full one.

// maxLogLine is the longest message of one record.
const maxLogLine = 16 * 1024

// logTimeFormat is the fixed-width RFC 3339 form used in records.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logFile appends records to one container instance's log.
type logFile struct {
	mu  sync.Mutex
	f   *os.File
	now func() time.Time
}

func createLog(path string, now func() time.Time) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &logFile{f: f, now: now}, nil
}

// copyFrom reads r (a container's stdout or stderr) until EOF and appends
// its lines as records of stream.
func (l *logFile) copyFrom(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			tag := "F"
			if isPrefix {
				tag = "P"
			}
			l.write(stream, tag, line)
		}
		if err != nil {
			return
		}
	}
}

func (l *logFile) write(stream, tag string, msg []byte) {
	var b bytes.Buffer
	b.Grow(len(logTimeFormat) + len(stream) + len(msg) + 5)
	b.WriteString(l.now().UTC().Format(logTimeFormat))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(msg)
	b.WriteByte('\n')
	l.mu.Lock()
	_, _ = l.f.Write(b.Bytes())
	l.mu.Unlock()
}

func (l *logFile) Close() error { return l.f.Close() }

// record is one parsed log record.
type record struct {
	time    time.Time
	stamp   []byte // the time as written
	partial bool
	msg     []byte
}

// parseRecord parses one line of a log file (without its newline).
func parseRecord(line []byte) (record, error) {
	stamp, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return record{}, errors.New("log record: missing stream")
	}
	t, err := time.Parse(time.RFC3339Nano, string(stamp))
	if err != nil {
		return record{}, fmt.Errorf("log record: time: %w", err)
	}
	_, rest, ok = bytes.Cut(rest, []byte{' '})
	if !ok {
		return record{}, errors.New("log record: missing tag")
	}
	tag, msg, _ := bytes.Cut(rest, []byte{' '})
	if len(tag) != 1 || (tag[0] != 'F' && tag[0] != 'P') {
		return record{}, fmt.Errorf("log record: tag %q", tag)
	}
	return record{time: t, stamp: stamp, partial: tag[0] == 'P', msg: msg}, nil
}

// LogOptions selects what a log request returns; the fields mirror the
// kubelet's /containerLogs query parameters.
type LogOptions struct {
	// Since, when not zero, drops records written before it.
	Since time.Time
	// Timestamps prefixes every line with its time.
	Timestamps bool
	// TailLines, when not negative, keeps only the last lines.
	TailLines int64
	// LimitBytes, when positive, stops after that many bytes.
	LimitBytes int64
	// Follow keeps streaming new records until the container stops or the
	// request ends.
	Follow bool
}

// parseLogOptions reads the query of a /containerLogs request.
func parseLogOptions(r *http.Request) (LogOptions, bool, error) {
	q := r.URL.Query()
	o := LogOptions{TailLines: -1}
	var err error
	if v := q.Get("sinceTime"); v != "" {
		if o.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return o, false, fmt.Errorf("sinceTime: %w", err)
		}
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return o, false, fmt.Errorf("sinceSeconds %q: want a positive integer", v)
		}
		o.Since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("tailLines"); v != "" {
		if o.TailLines, err = strconv.ParseInt(v, 10, 64); err != nil || o.TailLines < 0 {
			return o, false, fmt.Errorf("tailLines %q: want a non-negative integer", v)
		}
	}
	if v := q.Get("limitBytes"); v != "" {
		if o.LimitBytes, err = strconv.ParseInt(v, 10, 64); err != nil || o.LimitBytes <= 0 {
			return o, false, fmt.Errorf("limitBytes %q: want a positive integer", v)
		}
	}
	o.Timestamps = q.Get("timestamps") == "true"
	o.Follow = q.Get("follow") == "true"
	previous := q.Get("previous") == "true"
	return o, previous, nil
}

// limitWriter stops writing after n bytes.
type limitWriter struct {
	w io.Writer
	n int64 // remaining; negative means unlimited
}

var errLimit = errors.New("byte limit reached")

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n < 0 {
		return l.w.Write(p)
	}
	if l.n == 0 {
		return 0, errLimit
	}
	if int64(len(p)) > l.n {
		n, err := l.w.Write(p[:l.n])
		l.n -= int64(n)
		if err == nil {
			err = errLimit
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	return n, err
}

// writeRecords writes the selected records of data to w and returns the
// offset just after the last complete line consumed.
func writeRecords(w io.Writer, data []byte, o LogOptions) (int, error) {
	var recs []record
	consumed := 0
	for {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			break
		}
		line := data[consumed : consumed+i]
		consumed += i + 1
		rec, err := parseRecord(line)
		if err != nil {
			continue
		}
		if !o.Since.IsZero() && rec.time.Before(o.Since) {
			continue
		}
		recs = append(recs, rec)
	}
	if o.TailLines >= 0 {
		recs = tail(recs, o.TailLines)
	}
	for _, rec := range recs {
		if err := writeRecord(w, rec, o.Timestamps); err != nil {
			return consumed, err
		}
	}
	return consumed, nil
}

// tail keeps the records of the last n lines (a line may span partial
// records).
func tail(recs []record, n int64) []record {
	start := len(recs)
	for lines := int64(0); start > 0; start-- {
		if !recs[start-1].partial {
			if lines == n {
				break
			}
			lines++
		}
	}
	return recs[start:]
}

func writeRecord(w io.Writer, rec record, timestamps bool) error {
	var b bytes.Buffer
	if timestamps {
		b.Write(rec.stamp)
		b.WriteByte(' ')
	}
	b.Write(rec.msg)
	if !rec.partial {
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// streamLog writes the log at path to w per o. With o.Follow it keeps
// polling for new records until ctx ends or done reports the container
// instance finished (after which the remaining records are written).
func streamLog(ctx context.Context, w io.Writer, path string, o LogOptions, done func() bool) error {
	lw := &limitWriter{w: w, n: -1}
	if o.LimitBytes > 0 {
		lw.n = o.LimitBytes
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	off, err := writeRecords(lw, data, o)
	if err != nil || !o.Follow {
		return ignoreLimit(err)
	}
	flush(w)
	follow := o
	follow.TailLines = -1
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		finished := done()
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = f.Seek(int64(off), io.SeekStart)
		if err == nil {
			var more []byte
			more, err = io.ReadAll(f)
			if err == nil && len(more) > 0 {
				var n int
				n, err = writeRecords(lw, more, follow)
				off += n
				flush(w)
			}
		}
		f.Close()
		if err != nil {
			return ignoreLimit(err)
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

func flush(w io.Writer) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// LogLookup finds the log of a container of a Pod running on the node:
// the file of the current instance (or the previous one), and a function
// reporting whether that instance has finished.
type LogLookup func(namespace, pod, container string, previous bool) (path string, done func() bool, err error)

// errNoLog is returned by a LogLookup for an unknown Pod or container.
var errNoLog = errors.New("no such container")

// LogHandler serves GET /containerLogs/{namespace}/{pod}/{container} the
// way the kubelet does for the API server's pods/log subresource.
func LogHandler(lookup LogLookup) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		o, previous, err := parseLogOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		path, done, err := lookup(r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container"), previous)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, errNoLog) {
				code = http.StatusNotFound
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		if err := streamLog(r.Context(), w, path, o, done); err != nil {
			// The status line is out already; end the body early.
			return
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	return mux
}
