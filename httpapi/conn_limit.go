package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// ConnLimiter bounds the connections an http.Server holds open, so that
// connections alone (idle keep-alives, clients that open and send nothing)
// can never use up the process's file descriptors. At the bound, Accept
// closes the connection idle the longest, if there is one, and otherwise
// waits for a connection to end: a new client (a /healthz probe) gets in as
// soon as anyone is merely idle. Install both halves: Listener wraps the
// server's listener and ConnState is the server's ConnState hook.
type ConnLimiter struct {
	slots chan struct{}
	mu    struct {
		sync.Mutex
		idle map[net.Conn]time.Time // connections with no request in progress, since when
	}
}

// NewConnLimiter bounds the open connections to n (at least 1).
func NewConnLimiter(n int) *ConnLimiter {
	l := &ConnLimiter{slots: make(chan struct{}, max(1, n))}
	l.mu.idle = map[net.Conn]time.Time{}
	return l
}

// Max is the bound.
func (l *ConnLimiter) Max() int { return cap(l.slots) }

// Listener wraps ln: its Accept keeps to the bound.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l, done: make(chan struct{})}
}

// ConnState is the http.Server's ConnState hook: it tells the limiter which
// connections are idle.
func (l *ConnLimiter) ConnState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateNew, http.StateIdle:
		l.mu.idle[c] = time.Now()
	default: // active, hijacked, closed
		delete(l.mu.idle, c)
	}
}

// closeOldestIdle closes the connection idle the longest, if any.
func (l *ConnLimiter) closeOldestIdle() {
	l.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.mu.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.mu.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		_ = oldest.Close()
	}
}

type limitedListener struct {
	net.Listener
	l         *ConnLimiter
	done      chan struct{}
	closeOnce sync.Once
}

// Accept implements net.Listener.
func (ll *limitedListener) Accept() (net.Conn, error) {
	select {
	case ll.l.slots <- struct{}{}:
	default:
		ll.l.closeOldestIdle()
		select {
		case ll.l.slots <- struct{}{}:
		case <-ll.done:
			return nil, net.ErrClosed
		}
	}
	c, err := ll.Listener.Accept()
	if err != nil {
		<-ll.l.slots
		return nil, err
	}
	lc := &limitedConn{Conn: c}
	lc.release = sync.OnceFunc(func() {
		ll.l.mu.Lock()
		delete(ll.l.mu.idle, lc)
		ll.l.mu.Unlock()
		<-ll.l.slots
	})
	return lc, nil
}

// Close implements net.Listener.
func (ll *limitedListener) Close() error {
	ll.closeOnce.Do(func() { close(ll.done) })
	return ll.Listener.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

// Close implements net.Conn: the slot is given back once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
