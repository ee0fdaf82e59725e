package storetest

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lobbyd/lobbyd/store"
)

// LossyRedis is a real redis-server behind a proxy that can lose one reply:
// the command is executed by Redis, but the client's connection is closed
// before the reply reaches it, so go-redis sends the command again. It is
// how tests prove that every script is safe to run twice. It can also
// refuse commands: the connection is closed before they reach Redis.
type LossyRedis struct {
	Store *store.Store
	// URL reaches Redis through the proxy, for another client (a lobbyd).
	URL string

	ln      net.Listener
	target  string
	mu      sync.Mutex
	marker  []byte
	refuse  []byte
	dropped atomic.Int32
	refused atomic.Int32
	wg      sync.WaitGroup
}

// StartLossyRedis starts a redis-server and a store that reaches it through
// the proxy, with every script already loaded (so the first run of a script
// is an EVALSHA that succeeds, not one answered NOSCRIPT).
func StartLossyRedis(t testing.TB) *LossyRedis {
	t.Helper()
	r := StartRedis(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	l := &LossyRedis{ln: ln, target: r.Addr, URL: "redis://" + ln.Addr().String()}
	l.wg.Add(1)
	go l.serve()
	t.Cleanup(func() { ln.Close(); l.wg.Wait() })
	st, err := store.Open(context.Background(), store.Config{URL: l.URL})
	if err != nil {
		t.Fatalf("open store through the proxy: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.LoadScripts(context.Background()); err != nil {
		t.Fatalf("load scripts: %v", err)
	}
	l.Store = st
	return l
}

// LoseReplyTo arms the proxy: the next command whose bytes contain marker
// is executed but its reply is lost.
func (l *LossyRedis) LoseReplyTo(marker string) {
	l.mu.Lock()
	l.marker = []byte(marker)
	l.mu.Unlock()
}

// Lost reports how many replies were lost so far.
func (l *LossyRedis) Lost() int { return int(l.dropped.Load()) }

// RefuseCommandsWith makes the proxy refuse, until called again with "",
// every command whose bytes contain marker: the client's connection is
// closed and Redis never sees the command, as when Redis is unreachable.
func (l *LossyRedis) RefuseCommandsWith(marker string) {
	l.mu.Lock()
	l.refuse = []byte(marker)
	l.mu.Unlock()
}

// Refused reports how many commands were refused so far.
func (l *LossyRedis) Refused() int { return int(l.refused.Load()) }

func (l *LossyRedis) take(chunk []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.marker) > 0 && bytes.Contains(chunk, l.marker) {
		l.marker = nil
		return true
	}
	return false
}

func (l *LossyRedis) refuses(chunk []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.refuse) > 0 && bytes.Contains(chunk, l.refuse)
}

func (l *LossyRedis) serve() {
	defer l.wg.Done()
	for {
		client, err := l.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", l.target)
		if err != nil {
			client.Close()
			continue
		}
		l.wg.Add(2)
		lose := make(chan struct{}, 1)
		go func() { // client -> server
			defer l.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := client.Read(buf)
				if n > 0 {
					if l.refuses(buf[:n]) {
						l.refused.Add(1)
						client.Close()
						break
					}
					if l.take(buf[:n]) {
						lose <- struct{}{} // before the command goes out
					}
					if _, werr := server.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			server.Close()
		}()
		go func() { // server -> client
			defer l.wg.Done()
			defer client.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 {
					select {
					case <-lose:
						// Redis executed the command and answered: the
						// answer (and the connection) never reach the client.
						l.dropped.Add(1)
						server.Close()
						return
					default:
					}
					if _, werr := client.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
