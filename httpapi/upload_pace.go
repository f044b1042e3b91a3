package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// The body of an upload must keep a minimum pace: after a grace period
// (Config.UploadGrace) at least Config.MinUploadBytesPerSecond on average
// since its start. A body slower than that, or one that stalls, is cut off
// with 408 and what was received removed, so that half-sent bodies cannot
// hold the node's upload slots (slowloris). The pace is enforced with the
// connection's read deadline, moved on as bytes arrive: a stalled read ends
// when the body falls behind, not when the client decides.

// paceReader reads an upload's body, keeping the connection's read deadline
// at the moment the body falls behind the minimum pace.
type paceReader struct {
	body  io.Reader
	rc    *http.ResponseController // nil: the deadline is checked after each read only
	rate  int64                    // bytes per second; <= 0: no minimum
	grace time.Duration
	start time.Time
	n     int64 // bytes read
	slow  bool  // the body fell behind
}

// newPaceReader paces ctx's body at rate bytes per second after grace.
func newPaceReader(ctx huma.Context, rate int64, grace time.Duration) *paceReader {
	p := &paceReader{body: ctx.BodyReader(), rate: rate, grace: grace, start: time.Now()}
	if rate > 0 {
		_, w := humago.Unwrap(ctx)
		p.rc = http.NewResponseController(w)
		if err := p.rc.SetReadDeadline(p.deadline()); err != nil {
			p.rc = nil // not a connection of net/http's (a test's recorder)
		}
	}
	return p
}

// deadline is when the body falls behind the pace, with n bytes read.
func (p *paceReader) deadline() time.Time {
	return p.start.Add(p.grace + time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)))
}

// Read implements io.Reader.
func (p *paceReader) Read(b []byte) (int, error) {
	if p.slow {
		return 0, errTooSlow
	}
	n, err := p.body.Read(b)
	p.n += int64(n)
	if p.rate <= 0 {
		return n, err
	}
	if err != io.EOF && !time.Now().Before(p.deadline()) { // a stalled read ends on the deadline
		p.slow = true
		return n, errTooSlow
	}
	if p.rc != nil && err == nil {
		_ = p.rc.SetReadDeadline(p.deadline())
	}
	return n, err
}

// errTooSlow ends the reading of a body that fell behind.
var errTooSlow = fmt.Errorf("httpapi: the upload fell behind the minimum pace")

// finish clears the read deadline of a body that kept its pace, and
// reports whether it fell behind (its connection is then left to close).
func (p *paceReader) finish() (slow bool) {
	if p.rc != nil && !p.slow {
		_ = p.rc.SetReadDeadline(time.Time{})
	}
	return p.slow
}

// errUploadTooSlow is the answer to an upload that fell behind: 408, and
// the connection is closed (the rest of its body is not read).
func errUploadTooSlow(rate int64, grace time.Duration) error {
	return huma.ErrorWithHeaders(huma.NewError(http.StatusRequestTimeout, fmt.Sprintf(
		"the upload arrived too slowly: after the first %s a body must arrive at %s kbit/s or faster on average; nothing was kept or charged",
		grace, strconv.FormatInt(rate*8/1000, 10))),
		http.Header{"Connection": {"close"}})
}
