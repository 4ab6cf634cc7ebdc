package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// decodeBody reads a JSON body strictly: one object, no unknown fields, no
// trailing data, at most MaxBodyBytes, and none of what checkStrictJSON
// refuses (duplicate keys, case variants of field names, invalid UTF-8).
func decodeBody(req events.APIGatewayProxyRequest, v any) error {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return Errorf(EINVALID, "body is not valid base64")
		}
	}
	if len(body) > MaxBodyBytes {
		return Errorf(ETOOLARGE, "body is %d bytes; the limit is %d", len(body), MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(EINVALID, "body is empty; expected a JSON object")
	}
	if err := checkStrictJSON(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(EINVALID, "malformed JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(EINVALID, "malformed JSON body: unexpected data after the JSON object")
	}
	return nil
}

// checkStrictJSON refuses what encoding/json lets through but a security
// boundary must not: invalid UTF-8 (encoding/json stores U+FFFD in its
// place), a key given twice in one object (encoding/json keeps the last, so
// a reviewer and the decoder could read different targets), and a field
// name of t that differs from its JSON name only in case (encoding/json
// matches names case-insensitively). t is the Go type the body is decoded
// into; objects that are not structs of t (maps, callback data) are checked
// for duplicates only. encoding/json/v2, which does all this, still needs
// GOEXPERIMENT=jsonv2 in Go 1.26, hence this pre-pass over Decoder.Token.
// Syntax errors are left to the decoder that follows, for its messages.
func checkStrictJSON(body []byte, t reflect.Type) error {
	if !utf8.Valid(body) {
		return Errorf(EINVALID, "malformed JSON body: invalid UTF-8")
	}
	if hasLoneSurrogate(body) {
		return Errorf(EINVALID, "malformed JSON body: a \\u escape is half of a surrogate pair (not a character)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := strictValue(dec, t, "")
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil // a syntax error: the decoder reports it
}

// strictValue reads one value from dec, checking it against t (nil: any).
func strictValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	t = strictType(t)
	switch tok {
	case json.Delim('{'):
		return strictObject(dec, t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := strictValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

// strictType is the type whose field names a value of t must use: t
// without its pointers, or nil (any) for a type that reads its own JSON.
func strictType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		return nil // json.RawMessage, time.Time: their own syntax, any keys
	}
	return t
}

// strictObject reads the rest of an object whose '{' dec has read: no
// key twice, and, when t is a struct, no case variant of its field names.
// Each member's value is checked against its field's type (a map's
// element type; nil for any).
func strictObject(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	} else if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		name := key
		if path != "" {
			name = path + "." + key
		}
		if seen[key] {
			return Errorf(EINVALID, "malformed JSON body: duplicate key %q", name)
		}
		seen[key] = true
		ft, err := fieldType(fields, elem, key, name)
		if err != nil {
			return err
		}
		if err := strictValue(dec, ft, name); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// fieldType is the type of member key (name, with its path) of an object
// with fields (nil: not a struct, whose members are all elem). A key that
// matches a field only when case is ignored is refused: encoding/json
// would take it for that field. A key that matches none is left to the
// decoder's DisallowUnknownFields, for its message.
func fieldType(fields map[string]reflect.Type, elem reflect.Type, key, name string) (reflect.Type, error) {
	if fields == nil {
		return elem, nil
	}
	if ft, ok := fields[key]; ok {
		return ft, nil
	}
	for f := range fields {
		if strings.EqualFold(f, key) {
			return nil, Errorf(EINVALID, "malformed JSON body: unknown field %q (field names are case-sensitive: %q)", name, f)
		}
	}
	return nil, nil
}

// unmarshalerType is json.Unmarshaler, whose implementations strictType
// leaves unchecked.
var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonFields maps the JSON names of struct t's fields to their types, as
// encoding/json names them (tag name, else the Go name; embedded structs
// flattened).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// hasLoneSurrogate reports whether a string of the JSON text b holds a
// \uD800-\uDFFF escape that is not one half of a pair: encoding/json
// turns it into U+FFFD, the same loss as invalid UTF-8.
func hasLoneSurrogate(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			inString = !inString
		case inString && b[i] == '\\':
			skip, lone, bad := escapeAt(b, i)
			if lone || bad {
				return lone // bad: a syntax error, which the decoder reports
			}
			i += skip
		}
	}
	return false
}

// escapeAt reads the escape that starts with the backslash at b[i]: how
// many bytes follow the backslash, whether it is a lone surrogate, and
// whether it is malformed (a \u without four hex digits).
func escapeAt(b []byte, i int) (skip int, lone, bad bool) {
	if i+1 >= len(b) || b[i+1] != 'u' {
		return 1, false, false // an escaped character, such as \" or \\
	}
	r, ok := hex4(b, i+2)
	switch {
	case !ok:
		return 0, false, true
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, true, false // a low half first
	case r < 0xD800 || r > 0xDBFF:
		return 5, false, false // a character
	}
	// A high half: a low half's escape must follow at once.
	if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
		return 0, true, false
	}
	if lo, ok := hex4(b, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
		return 0, true, false
	}
	return 11, false, false // both escapes
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
