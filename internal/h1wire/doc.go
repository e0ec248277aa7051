// Package h1wire holds the HTTP/1.1 wire rules that rauta's server
// (internal/h1server, reading requests) and its upstream client (pool,
// reading responses) share: reading a header block or a trailer section,
// splitting it into field lines, reading chunk-size lines, and the
// character rules for tokens, field values, Host values and lists.
//
// There is one rule for each thing, the same for both directions, so that
// a fix made for requests also reaches responses. Where
// golang.org/x/net/http/httpguts states the same rule, this package calls
// it rather than keeping its own table.
//
// The rules are those of RFC 9110 and RFC 9112, read strictly:
//
//   - every line ends in CRLF; a bare LF or a CR elsewhere in a line is an
//     error (ErrBareLF, ErrBareCR);
//   - obsolete line folding is refused (ErrObsFold);
//   - a field name is a token, a field value holds no control character
//     other than HTAB, and loses its leading and trailing whitespace;
//   - a chunk-size line is 1 to 16 hexadecimal digits whose value fits an
//     int64, followed by chunk extensions that must follow the grammar of
//     RFC 9112 section 7.1.1 (they are then ignored);
//   - a trailer section may not carry Content-Length, Transfer-Encoding,
//     Trailer or Host (ErrTrailerField).
//
// Errors are package values, so each user maps them to its own answer (a
// status code for the server, ErrMalformedResponse for the client).
// Functions that return strings return substrings of their input; reading
// a header block costs one allocation, the string holding it.
package h1wire
