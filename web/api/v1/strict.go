package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// keyError is a key of a request body that strict decoding refuses.
type keyError struct {
	Path string
	Msg  string
}

// checkKeys walks the first JSON value of data against t, the type it is decoded into,
// and refuses what encoding/json lets through: a struct's key in another letter case
// (json matches field names case-insensitively, so "NAME" would fill name) and a key
// given twice in any object (json keeps the last one silently). A shape that does not
// match t is left to the decoder, which reports it with its field. Invalid UTF-8, which
// the decoder would turn into U+FFFD, is refused with the key it is in.
func checkKeys(data []byte, t reflect.Type) *keyError {
	w := &keyWalker{dec: json.NewDecoder(bytes.NewReader(data)), badAt: -1}
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				w.badAt = int64(i)
				break
			}
			i += size
		}
	}
	w.dec.UseNumber()
	return w.walk(t, "")
}

type keyWalker struct {
	dec *json.Decoder
	// badAt is the offset of the body's first invalid UTF-8 byte, or -1.
	badAt int64
}

// invalid reports whether the token just read (which started after from) holds the
// invalid byte.
func (w *keyWalker) invalid(from int64) bool {
	return w.badAt >= from && w.badAt < w.dec.InputOffset()
}

func (w *keyWalker) walk(t reflect.Type, path string) *keyError {
	dec := w.dec
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	from := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil // malformed: the decoder says where
	}
	d, ok := tok.(json.Delim)
	if !ok {
		if w.invalid(from) {
			return &keyError{Path: path, Msg: "not valid UTF-8"}
		}
		return nil
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if ke := w.walk(elem, fmt.Sprintf("%s[%d]", path, i)); ke != nil {
				return ke
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			from := dec.InputOffset()
			tok, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := tok.(string)
			at := key
			if path != "" {
				at = path + "." + key
			}
			if w.invalid(from) {
				return &keyError{Path: at, Msg: "the key is not valid UTF-8"}
			}
			if seen[key] {
				return &keyError{Path: at, Msg: "duplicate key"}
			}
			seen[key] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &keyError{Path: at, Msg: fmt.Sprintf("unknown field (keys are case-sensitive: did you mean %q?)", name)}
						}
					}
					return &keyError{Path: at, Msg: "unknown field"}
				}
				vt = ft
			}
			if ke := w.walk(vt, at); ke != nil {
				return ke
			}
		}
	}
	_, _ = dec.Token() // the closing delimiter
	return nil
}

// jsonFields are a struct's JSON keys, exactly as encoding/json writes them, and their
// types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
