package lobby

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkConn is a socket whose writes can be held back and sent together:
// gorilla writes each frame with its own write system call, so the frames
// queued for one player (a reply and the events it caused, queue.state and
// match.found) would cost one each. Between cork and uncork the writes
// collect in a buffer, sent by uncork in one call. Uncorked, writes go
// straight through (the handshake reply, pongs from the read loop).
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

// corkBufs recycles the buffers of corked writes: an idle socket holds none.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxKeptCorkBuf is the largest buffer given back to corkBufs.
const maxKeptCorkBuf = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork holds back the writes that follow until uncork. cork and uncork do
// nothing on a nil *corkConn: a socket not hijacked through corkingWriter
// writes each frame as it comes.
func (c *corkConn) cork() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what was held back, in one write, under the write deadline
// last set.
func (c *corkConn) uncork() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= maxKeptCorkBuf {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
	return err
}

// corkingWriter hands gorilla's Upgrade a corkConn when it hijacks the
// connection; the session finds it again as the websocket.Conn's NetConn.
type corkingWriter struct {
	http.ResponseWriter
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &corkConn{Conn: nc}, brw, nil
}
