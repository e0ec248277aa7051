package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http/httpguts"
)

// netHTTPParse parses one request the way net/http's server does:
// http.ReadRequest, then the checks its connection applies (version, Host,
// field validity, Expect), then the body read to its end.
func netHTTPParse(raw []byte) (*parsed, error) {
	cr := &countingReader{r: bytes.NewReader(raw)}
	br := bufio.NewReaderSize(cr, readBufferSize)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	isH2Preface := req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*"
	if req.ProtoMajor != 1 && !isH2Preface {
		return nil, errors.New("unsupported protocol version")
	}
	// http.ReadRequest removes Host from the header; the server looks at
	// it first. Read the head again with the same textproto reader.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	tp.ReadLine()
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	hosts, haveHost := mh["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && !isH2Preface && req.Method != http.MethodConnect {
		return nil, errors.New("missing required Host header")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return nil, errors.New("malformed Host header")
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	delete(req.Header, "Host")
	if !httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue") && req.Header.Get("Expect") != "" {
		return nil, errors.New("expectation failed")
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	return &parsed{req: req, body: body, consumed: cr.n - br.Buffered()}, nil
}

// parsedView is what the two parsers must agree on.
type parsedView struct {
	Method, RequestURI, Proto string
	ProtoMajor, ProtoMinor    int
	URL                       string
	URLParts                  [7]string
	Host                      string
	Header, Trailer           http.Header
	ContentLength             int64
	TransferEncoding          []string
	Close                     bool
	Body                      string
	Consumed                  int
}

func view(p *parsed) parsedView {
	r := p.req
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	u := r.URL
	return parsedView{
		Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto,
		ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		URL:              u.String(),
		URLParts:         [7]string{u.Scheme, u.Opaque, u.User.String(), u.Host, u.Path, u.RawPath, u.RawQuery},
		Host:             r.Host,
		Header:           h,
		Trailer:          r.Trailer,
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Close:            r.Close,
		Body:             string(p.body),
		Consumed:         p.consumed,
	}
}

// diffParsed compares the two parses, allowing for net/http's one
// rewrite: it adds "Cache-Control: no-cache" to a request with
// "Pragma: no-cache" and no Cache-Control.
func diffParsed(ours, theirs *parsed) string {
	o, t := view(ours), view(theirs)
	if _, ok := o.Header["Cache-Control"]; !ok && len(o.Header["Pragma"]) > 0 {
		delete(t.Header, "Cache-Control")
	}
	return cmp.Diff(t, o)
}

// TestParseMatchesNetHTTP checks the parse table against net/http: what
// this package accepts, net/http accepts and reads the same way (down to
// the bytes the request consumed); what only this package refuses is
// marked stricter.
func TestParseMatchesNetHTTP(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			ours, oerr := parseRaw([]byte(c.raw), nil)
			theirs, terr := netHTTPParse([]byte(c.raw))
			switch {
			case oerr == nil && terr != nil:
				t.Fatalf("accepted what net/http refuses (%v)", terr)
			case oerr == nil:
				if d := diffParsed(ours, theirs); d != "" {
					t.Fatalf("parse differs from net/http (-net/http +ours)\n%s", d)
				}
			case terr == nil && !c.stricter:
				t.Fatalf("refused (%v) what net/http accepts; mark the case stricter if intended", oerr)
			case terr != nil && c.stricter:
				t.Fatalf("marked stricter, but net/http refuses it too (%v)", terr)
			}
		})
	}
}

// TestStricterThanNetHTTP lists the inputs this package refuses and
// net/http accepts: each is an ambiguity a front proxy must not pass on.
func TestStricterThanNetHTTP(t *testing.T) {
	var names []string
	for _, c := range parseCases {
		if !c.stricter {
			continue
		}
		names = append(names, c.name)
		if _, err := netHTTPParse([]byte(c.raw)); err != nil {
			t.Errorf("%s: net/http refuses it too: %v", c.name, err)
		}
		if _, err := parseRaw([]byte(c.raw), nil); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	t.Logf("stricter than net/http on %d inputs: %s", len(names), strings.Join(names, "; "))
}

// FuzzParseRequest checks the parser on arbitrary input: it never panics;
// it reads the same whether the input comes at once or a byte at a time;
// and whatever it accepts, net/http accepts and reads identically,
// including where the request ends. So a request this server frames one
// way cannot be framed another way by a server that parses like net/http,
// and every input this server refuses that net/http accepts is one of the
// stricter rules.
func FuzzParseRequest(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ours, oerr := parseRaw(raw, nil)
		slow, serr := parseRaw(raw, iotest.OneByteReader(bytes.NewReader(raw)))
		if (oerr == nil) != (serr == nil) || oerr != nil && oerr.Error() != serr.Error() {
			t.Fatalf("whole input: %v; byte by byte: %v", oerr, serr)
		}
		if oerr != nil {
			return
		}
		if d := cmp.Diff(view(ours), view(slow)); d != "" {
			t.Fatalf("byte-by-byte parse differs (-whole +bytes)\n%s", d)
		}
		theirs, terr := netHTTPParse(raw)
		if terr != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", raw, terr)
		}
		if d := diffParsed(ours, theirs); d != "" {
			t.Fatalf("parse of %q differs from net/http (-net/http +ours)\n%s", raw, d)
		}
	})
}
