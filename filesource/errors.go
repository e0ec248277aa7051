package filesource

import (
	"errors"
	"strconv"
	"strings"
)

// Errors wrapped by [Error] to say what is wrong with a document.
var (
	// ErrSyntax is a document that is not valid YAML or JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownField is a field the object's type does not have.
	ErrUnknownField = errors.New("unknown field")
	// ErrDuplicateField is a field given twice in one object.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrInvalidValue is a value of the wrong type or out of range, or a
	// required field that is missing.
	ErrInvalidValue = errors.New("invalid value")
	// ErrUnsupportedKind is an apiVersion and kind the file source does not
	// read.
	ErrUnsupportedKind = errors.New("unsupported kind")
	// ErrDuplicateObject is an object defined twice (same kind, namespace
	// and name) in the files read.
	ErrDuplicateObject = errors.New("object defined twice")
)

// Error is a problem with one document of a file: it names the file, the
// document, the line the document starts on, the object and the field.
// [Load] returns every Error it found joined with errors.Join; use
// errors.As to get at one, or the sentinel errors (ErrUnknownField, ...)
// with errors.Is.
type Error struct {
	// File is the path of the file, as given to Load or joined to it.
	File string
	// Document is the 1-based index of the document within the file,
	// counting only documents that are not empty; zero when the problem
	// concerns the file as a whole.
	Document int
	// Line is the 1-based line on which the document starts; zero when
	// unknown.
	Line int
	// Item is the index of the object in a kind: List document, or -1.
	Item int
	// Object names the object, "Kind namespace/name" or "Kind name", when
	// it is known.
	Object string
	// Field is the path of the offending field, e.g.
	// "spec.rules[0].matches[0].path.kind"; empty when the problem is not
	// with one field.
	Field string
	// Err is what is wrong; it wraps one of the sentinel errors of this
	// package when one applies.
	Err error
}

// Error returns the problem as
// "file: document N (line L): Kind namespace/name: field: problem".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Document > 0 {
		b.WriteString(": document ")
		b.WriteString(strconv.Itoa(e.Document))
		if e.Line > 0 {
			b.WriteString(" (line ")
			b.WriteString(strconv.Itoa(e.Line))
			b.WriteString(")")
		}
	}
	if e.Item >= 0 {
		b.WriteString(": items[")
		b.WriteString(strconv.Itoa(e.Item))
		b.WriteString("]")
	}
	if e.Object != "" {
		b.WriteString(": ")
		b.WriteString(e.Object)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }
