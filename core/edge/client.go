package edge

import (
	"net/http"
	"time"
)

// What the edge does when a client misbehaves or goes away. None of it is
// ever held against an endpoint: a client's broken body is answered 400
// (408 when it is too slow) and leaves the endpoint's failure counts alone,
// and a client that is gone gets no answer at all — the response is
// aborted, so that no status the endpoint never sent (such as the 200 the
// HTTP server writes for a handler that returns without writing) reaches
// anyone.

// abortClientGone records the request as closed by its client and aborts the
// response: the server closes the connection without writing anything more.
func abortClientGone(status *int) {
	*status = StatusClientClosed
	panic(http.ErrAbortHandler)
}

// clientBodyError answers a request whose body could not be read from the
// client. code is one of the clientBody* constants.
func (e *Edge) clientBodyError(w http.ResponseWriter, st []string, a *app, code int, err error, status *int) int {
	e.log.Debug("client request body failed", "app", a.name, "error", err)
	switch code {
	case clientBodyGone:
		abortClientGone(status)
	case clientBodyTimeout:
		w.Header()["Connection"] = []string{"close"}
		edgeError(w, st, http.StatusRequestTimeout, "request body not received in time")
		return http.StatusRequestTimeout
	}
	w.Header()["Connection"] = []string{"close"}
	edgeError(w, st, http.StatusBadRequest, "malformed request body")
	return http.StatusBadRequest
}

// The deadline setters reach the client connection through the
// ResponseWriter of net/http without building a ResponseController, so they
// do not allocate. Writers without deadlines (a handler mounted elsewhere)
// are left alone.

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func setReadDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(readDeadliner); ok {
		d.SetReadDeadline(t)
	}
}

func setWriteDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(writeDeadliner); ok {
		d.SetWriteDeadline(t)
	}
}
