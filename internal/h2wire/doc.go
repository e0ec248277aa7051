// Package h2wire holds the HTTP/2 field rules (RFC 9113 section 8.2) that
// rauta's HTTP/2 server (internal/h2server) and client (internal/h2client)
// both apply, so that each rule is written once: field names travel in
// lower case and must be tokens, connection-specific fields are never
// sent, and the names of common fields are converted between their wire
// and canonical forms without allocating; a header block is framed as
// HEADERS and CONTINUATION frames the same way by both.
package h2wire
