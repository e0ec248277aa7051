//go:build reliability

package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// clients returns an HTTP/1.1 client and an HTTP/2 (h2c with prior
// knowledge) client.
func clients(conns int) (h1, h2 *http.Client) {
	t1 := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	t1.Protocols = new(http.Protocols)
	t1.Protocols.SetHTTP1(true)
	t2 := &http.Transport{DisableCompression: true}
	t2.Protocols = new(http.Protocols)
	t2.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: t1}, &http.Client{Transport: t2}
}

// tally counts the outcomes of the load against one fault.
type tally struct {
	mu           sync.Mutex
	sent, ok     [2]int // by kind: GET (idempotent), POST
	failed       map[string]int
	mismatch     int
	falseSuccess int
	examples     []string
	errors       []string // the first transport errors, for the log
}

const (
	kindGET = iota
	kindPOST
)

func newTally() *tally { return &tally{failed: map[string]int{}} }

func (t *tally) note(kind int, okay bool, failure string, mismatch, falseSuccess bool, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent[kind]++
	switch {
	case mismatch:
		t.mismatch++
	case falseSuccess:
		t.falseSuccess++
	case okay:
		t.ok[kind]++
	default:
		t.failed[[]string{"GET", "POST"}[kind]+" "+failure]++
	}
	if example != "" && len(t.examples) < 5 {
		t.examples = append(t.examples, example)
	}
}

// idempotentFailed is the number of GET requests that did not succeed.
func (t *tally) idempotentFailed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent[kindGET] - t.ok[kindGET]
}

func (t *tally) allFailed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent[0] + t.sent[1] - t.ok[0] - t.ok[1]
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent[0] + t.sent[1]
}

// failures formats the failures by method and status, "-" for none.
func (t *tally) failures() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failed) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range t.failed {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, t.failed[k]))
	}
	return strings.Join(parts, ", ")
}

// load is steady traffic: workers alternating between an HTTP/1.1 and an
// HTTP/2 client, each sending GET and POST requests one after another.
type load struct {
	base     string   // http://host:port
	prefixes []string // path prefixes, picked at random per request
	workers  int
	postPct  int // share of POST requests, in percent
	maxBody  int // largest POST body
	maxResp  int // largest response body
	h1, h2   *http.Client
	seq      atomic.Int64
}

func newLoad(base string, prefixes ...string) *load {
	l := &load{base: base, prefixes: prefixes, workers: 8, postPct: 30, maxBody: 64 << 10, maxResp: 32 << 10}
	l.h1, l.h2 = clients(l.workers)
	return l
}

// run sends requests until ctx is done, counting them in t.
func (l *load) run(ctx context.Context, t *tally) {
	var wg sync.WaitGroup
	for w := range l.workers {
		c := l.h1
		if w%2 == 1 {
			c = l.h2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l.one(c, t)
			}
		}()
	}
	wg.Wait()
}

// one sends one request and checks its answer.
func (l *load) one(c *http.Client, t *tally) {
	id := strconv.FormatInt(l.seq.Add(1), 36)
	kind := kindGET
	method := http.MethodGet
	if mrand.IntN(100) < l.postPct {
		kind, method = kindPOST, http.MethodPost
	}
	url := fmt.Sprintf("%s%s%s?size=%d", l.base, l.prefixes[mrand.IntN(len(l.prefixes))], id, 64+mrand.IntN(l.maxResp))
	if mrand.IntN(2) == 0 {
		url += "&chunked=1"
	}
	var body []byte
	sent := "empty"
	if kind == kindPOST {
		body = make([]byte, 1+mrand.IntN(l.maxBody))
		rand.Read(body)
		sent = sum(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set(hdrID, id)
	resp, err := c.Do(req)
	if err != nil {
		reason := "error"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "client timeout"
		}
		t.mu.Lock()
		if len(t.errors) < 3 {
			t.errors = append(t.errors, method+" "+err.Error())
		}
		t.mu.Unlock()
		t.note(kind, false, reason, false, false, "")
		return
	}
	got, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	ok, failure, mismatch, falseSuccess, why := verdict(resp, got, rerr, id, sent)
	example := ""
	if mismatch || falseSuccess {
		example = fmt.Sprintf("%s %s: %s", method, url, why)
	}
	t.note(kind, ok, failure, mismatch, falseSuccess, example)
}

// verdict classifies an answer: a success the backend gave, a failure
// (by status, or "cut" for a body that ended in an error), a mismatch (an
// answer other than the one the backend sent), or a false success (a 2xx
// status no backend gave).
func verdict(resp *http.Response, got []byte, rerr error, id, sent string) (ok bool, failure string, mismatch, falseSuccess bool, why string) {
	success := resp.StatusCode >= 200 && resp.StatusCode < 300
	stamp := resp.Header.Get(hdrStamp)
	if stamp == "" {
		if success {
			return false, "", false, true, fmt.Sprintf("status %d without a backend's stamp", resp.StatusCode)
		}
		return false, strconv.Itoa(resp.StatusCode), false, false, ""
	}
	if rerr != nil {
		// The response was cut off and the client was told so.
		return false, "cut", false, false, ""
	}
	first, _, _ := bytes.Cut(got, []byte("\n"))
	switch {
	case sum(got) != stamp:
		return false, "", true, false, fmt.Sprintf("body of %d bytes does not match the stamp (first line %q)", len(got), first)
	case resp.Header.Get(hdrSID) != id || !bytes.HasPrefix(got, []byte("id="+id+" ")):
		return false, "", true, false, fmt.Sprintf("answer to another request: %q", first)
	case !bytes.Contains(first, []byte(" req="+sent+" ")) &&
		!(resp.Header.Get(hdrEarly) == "1" && bytes.Contains(first, []byte(" req=unread "))):
		return false, "", true, false, fmt.Sprintf("the backend received another request body: %q, sent %s", first, sent)
	}
	if !success {
		return false, strconv.Itoa(resp.StatusCode), false, false, ""
	}
	return true, "", false, false, ""
}

// dialer resolves every address to addr, for clients of a proxy.
func dialer(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}
