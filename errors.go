package main

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes shared by every part of callclock. Each maps to one HTTP
// status in errorStatus, the only place that mapping is made.
const (
	EINVALID   = "invalid"            // the request is malformed or violates a rule
	ENOTFOUND  = "not_found"          // the timer or route does not exist
	EMETHOD    = "method_not_allowed" // the route exists, the method does not
	ECONFLICT  = "conflict"           // the timer changed meanwhile; try again
	ETOOLARGE  = "payload_too_large"  // the body is over MaxBodyBytes
	EFORBIDDEN = "forbidden"          // authentication failed
	EINTERNAL  = "internal"           // anything the caller cannot fix
)

// Error is callclock's one error type. Code is machine-readable, Message is
// safe to show to the caller: it never holds secrets or internal detail.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// EINTERNAL when there is none: an error we did not classify is our fault.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message for err. Unclassified errors
// get a generic message; their detail belongs in the log only.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

// errorStatus returns the HTTP status for an error code.
func errorStatus(code string) int {
	switch code {
	case EINVALID:
		return http.StatusBadRequest
	case ENOTFOUND:
		return http.StatusNotFound
	case EMETHOD:
		return http.StatusMethodNotAllowed
	case ECONFLICT:
		return http.StatusConflict
	case ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case EFORBIDDEN:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}
