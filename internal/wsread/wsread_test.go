package wsread_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/wsread"
)

type frame struct{ Type string }

func TestLoopDecodesFramesAndEndsWithTheSocket(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(`{"Type":"a"}`))
		c.WriteMessage(websocket.TextMessage, []byte(`not json`))
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "bye"))
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	require.NoError(t, err)
	defer ws.Close()

	out := make(chan *frame, 4)
	err = wsread.Loop(ws, out, make(chan struct{}), func() *frame { return &frame{Type: "invalid"} })
	close(out)
	var got []string
	for f := range out {
		got = append(got, f.Type)
	}
	assert.Equal(t, []string{"a", "invalid"}, got)
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 4004, ce.Code)
}

func TestLoopStopsWhenDoneIsClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(`{"Type":"a"}`))
		c.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	require.NoError(t, err)
	defer ws.Close()

	done := make(chan struct{})
	close(done)
	out := make(chan *frame) // nobody reads: only done lets the loop go
	assert.NoError(t, wsread.Loop(ws, out, done, func() *frame { return nil }))
}
