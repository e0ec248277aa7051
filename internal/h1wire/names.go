package h1wire

// commonHeaders interns the canonical names of common fields, so that a
// peer sending them in another case costs no allocation. It is read-only.
var commonHeaders = func() map[string]string {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Age",
		"Allow", "Alt-Svc", "Authorization", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type",
		"Cookie", "Date", "Dnt", "Early-Data", "Etag", "Expect", "Expires", "Forwarded",
		"From", "Grpc-Accept-Encoding", "Grpc-Encoding", "Grpc-Message", "Grpc-Status",
		"Grpc-Timeout", "Host", "Http2-Settings", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive", "Last-Modified",
		"Link", "Location", "Max-Forwards", "Origin", "Pragma", "Priority",
		"Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Range",
		"Referer", "Retry-After", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User",
		"Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Traceparent", "Tracestate", "Trailer",
		"Transfer-Encoding", "Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Vary",
		"Via", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options", "X-Real-Ip",
		"X-Request-Id", "X-Requested-With",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()

// CanonicalName validates a field name (a token) and returns its canonical
// form, as textproto.CanonicalMIMEHeaderKey would. A name already in
// canonical form is returned as is (a substring of the caller's block); a
// common name in another case is interned; only other names allocate.
func CanonicalName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	canon := true
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !IsTokenByte(c) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canon = false
		}
		upper = c == '-'
	}
	if canon {
		return name, true
	}
	var stack [64]byte
	var buf []byte
	if len(name) <= len(stack) {
		buf = stack[:len(name)]
	} else {
		buf = make([]byte, len(name))
	}
	upper = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	if s, ok := commonHeaders[string(buf)]; ok {
		return s, true
	}
	return string(buf), true
}
