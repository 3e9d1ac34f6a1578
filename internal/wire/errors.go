package wire

import (
	"errors"
)

// Sentinel causes wrapped in *DecodeError (test with errors.Is).
var (
	// ErrShort: the input ended before the field did.
	ErrShort = errors.New("short buffer")
	// ErrMsgNumber: the payload's first byte is not the expected message number.
	ErrMsgNumber = errors.New("unexpected message number")
	// ErrEmptyName: a name-list holds an empty name (RFC 4251 §5).
	ErrEmptyName = errors.New("empty name in name-list")
	// ErrBadName: a name-list holds a NUL byte (RFC 4251 §5).
	ErrBadName = errors.New("invalid character in name-list")
	// ErrTooMany: a count (name-list entries, EXT_INFO extensions) exceeds its bound.
	ErrTooMany = errors.New("too many entries")
	// ErrTooLarge: an mpint exceeds MaxMpintBits.
	ErrTooLarge = errors.New("mpint too large")
	// ErrNegative: a length passed to Reader.Fixed is negative.
	ErrNegative = errors.New("negative length")
)

// DecodeError reports a malformed field. Msg is the message number being
// decoded (0 when the Reader was not told one, see Reader.Expect), Field
// names the field, Err is the cause (ErrShort, ErrTooLarge, ...).
type DecodeError struct {
	Msg   byte
	Field string
	Err   error
}

// Error returns "sshtap: wire: SSH_MSG_X: field: cause" (the message part is
// omitted when Msg is 0).
func (e *DecodeError) Error() string {
	s := "sshtap: wire: "
	if e.Msg != 0 {
		s += MsgName(e.Msg) + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	if e.Err == nil {
		return s + "malformed"
	}
	return s + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }
