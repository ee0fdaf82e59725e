// Package wsread reads a WebSocket's frames as JSON values onto a channel:
// the read loop of the load tools' simulated players (lobbyload,
// lobbychaos), each with its own frame type.
package wsread

import (
	"encoding/json"

	"github.com/gorilla/websocket"
)

// Loop decodes every frame of ws into a new T and sends it on out, until
// the socket fails or done is closed. It returns the read error, or nil
// when done was closed. It leaves out open: the caller closes it once it
// has recorded why the socket ended. A frame that is not JSON is
// sent as invalid(), so the reader sees that one came.
func Loop[T any](ws *websocket.Conn, out chan<- *T, done <-chan struct{}, invalid func() *T) error {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		v := new(T)
		if json.Unmarshal(data, v) != nil {
			v = invalid()
		}
		select {
		case out <- v:
		case <-done:
			return nil
		}
	}
}
