// Package jsonbody reads the JSON body of a request to a route other tools call
// (Flagger's webhooks, Kayenta's REST subset): the media type, the size bound and the
// read, each refused with the status and the message those routes answer. Decoding,
// leniently as each tool needs, stays with the route.
package jsonbody

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Error is a refused body: the status to answer and why.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Read returns r's body, at most max bytes. A Content-Type other than application/json
// (none is accepted) is 415, a larger body 413, a failed read 400.
func Read(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: "Content-Type must be application/json"}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)}
	}
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "reading the body: " + err.Error()}
	}
	return data, nil
}
