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
	// EUNAVAILABLE: this function does not serve the request (a
	// deployment that routes the API to a function without it).
	EUNAVAILABLE = "unavailable"
	// EBADGATEWAY: the local API Gateway's integration (the handler)
	// failed or timed out, as API Gateway answers then.
	EBADGATEWAY = "bad_gateway"
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

// errorResponse is err as an HTTP answer: its code's status and the one
// error body, {"error": {"code", "message"}}, whose message is
// ErrorMessage's (nothing internal reaches a caller).
func errorResponse(err error) (int, map[string]any) {
	code := ErrorCode(err)
	return errorStatus(code), map[string]any{"error": map[string]string{"code": code, "message": ErrorMessage(err)}}
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
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case EBADGATEWAY:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}
