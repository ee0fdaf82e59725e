package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// stdEncode is how node messages were encoded before the hand-written
// path, and still are when it does not apply.
func stdEncode(t testing.TB, msg domain.NodeMessage) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(msg))
	return b.Bytes()
}

// matchReady is a frame as lobby.MatchReady builds it for four players.
const matchReady = `{"type":"match.ready","matchId":"0f8c7e4e-4a53-4c39-9f4e-7d1c0b0c2a11","queue":"default",` +
	`"partyId":"9a4f2b1c-5d6e-4f70-8a9b-0c1d2e3f4a5b","networkDescriptor":"{\"networkId\":\"9a4f2b1c\",\"regions\":[\"NorthEurope\"],` +
	`\"relay\":\"relay-ne-1.playfabapi.com:3478\",\"key\":\"c2VjcmV0LWJ1dC1ub3QtcmVhbGx5\"}","invitationId":"inv-7d1c0b0c",` +
	`"region":"NorthEurope","players":["3f2c1a0b-0000-4000-8000-000000000001","3f2c1a0b-0000-4000-8000-000000000002",` +
	`"3f2c1a0b-0000-4000-8000-000000000003","3f2c1a0b-0000-4000-8000-000000000004"]}`

func deliveryMessage() domain.NodeMessage {
	return domain.NodeMessage{Events: []domain.Addressed{{
		To:      []string{"3f2c1a0b-0000-4000-8000-000000000001", "3f2c1a0b-0000-4000-8000-000000000002", "3f2c1a0b-0000-4000-8000-000000000003"},
		Event:   json.RawMessage(matchReady),
		MatchID: "0f8c7e4e-4a53-4c39-9f4e-7d1c0b0c2a11",
	}}}
}

// The hand-written encoding is byte for byte encoding/json's, for every
// message, whichever path it takes; and what it writes decodes to the
// message sent.
func TestEncodeNodeMessageIsEncodingJSONs(t *testing.T) {
	cases := map[string]domain.NodeMessage{
		"a delivery": deliveryMessage(),
		"several events": {Events: []domain.Addressed{
			{To: []string{"a"}, Event: json.RawMessage(`{"type":"lobby.state","lobby":{"name":"<b>&co</b>"}}`)},
			{To: []string{"b", "c"}, Event: json.RawMessage(`{"type":"queue.state","status":"searching","n":[1,2.5,-3e2,true,null]}`), MatchID: "m"},
		}},
		"no recipients":           {Events: []domain.Addressed{{To: nil, Event: json.RawMessage(`{}`)}}},
		"no recipients, empty":    {Events: []domain.Addressed{{To: []string{}, Event: json.RawMessage(`[]`)}}},
		"ids to escape":           {Events: []domain.Addressed{{To: []string{"a\"b", `c\d`, "e\nf", "é", "\u2028", "<&>"}, Event: json.RawMessage(`{}`), MatchID: "m\t1"}}},
		"escapes in the event":    {Events: []domain.Addressed{{To: []string{"a"}, Event: json.RawMessage(`{"s":"a\"b\\c\u00e9\n\/"}`)}}},
		"white space in events":   {Events: []domain.Addressed{{To: []string{"a"}, Event: json.RawMessage("{ \"type\" :\n \"ping\" }")}}},
		"non-ASCII in an event":   {Events: []domain.Addressed{{To: []string{"a"}, Event: json.RawMessage(`{"name":"José ` + "\u2028" + `"}`)}}},
		"a replace":               {Replace: &domain.Replace{PlayerID: "p", ConnID: "c"}},
		"events and a replace":    {Events: deliveryMessage().Events, Replace: &domain.Replace{PlayerID: "p", ConnID: "c"}},
		"events and a disconnect": {Events: deliveryMessage().Events, Disconnect: &domain.Disconnect{PlayerID: "p"}},
		"events and a drain":      {Events: deliveryMessage().Events, Drain: &domain.Drain{}},
		"nothing":                 {},
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := encodeNodeMessage(msg)
			require.NoError(t, err)
			assert.Equal(t, string(stdEncode(t, msg)), string(got))
			var back domain.NodeMessage
			require.NoError(t, json.Unmarshal(got, &back))
			assert.Equal(t, len(msg.Events), len(back.Events))
		})
	}
	t.Run("the hand-written path is the one a delivery takes", func(t *testing.T) {
		assert.True(t, compactEvents(deliveryMessage().Events))
		assert.False(t, compactEvents(cases["white space in events"].Events))
		assert.False(t, compactEvents(cases["non-ASCII in an event"].Events))
	})
	t.Run("an event cut short is refused, as encoding/json refuses it", func(t *testing.T) {
		_, err := encodeNodeMessage(domain.NodeMessage{Events: []domain.Addressed{{To: []string{"a"}, Event: json.RawMessage(`{"type":`)}}})
		assert.Error(t, err)
	})
}

// FuzzEncodeNodeMessage: any valid event and any recipients encode as
// encoding/json encodes them (events are lobbyd's own frames, valid JSON;
// see encodeNodeMessage).
func FuzzEncodeNodeMessage(f *testing.F) {
	f.Add(matchReady, "3f2c1a0b-0000-4000-8000-000000000001", "m1")
	f.Add(`{"a":"\u2028 <>"}`, "a\"b", "")
	f.Add(`[1, 2]`, "é", "\x00")
	f.Fuzz(func(t *testing.T, event, to, matchID string) {
		if !json.Valid([]byte(event)) {
			return
		}
		msg := domain.NodeMessage{Events: []domain.Addressed{{To: []string{to, strings.ToUpper(to)}, Event: json.RawMessage(event), MatchID: matchID}}}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		wantErr := enc.Encode(msg)
		got, err := encodeNodeMessage(msg)
		if wantErr != nil {
			t.Fatalf("encoding/json refused a valid event %q: %v", event, wantErr)
		}
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("event %q to %q: got %q (%v), want %q", event, to, got, err, want.Bytes())
		}
	})
}

func BenchmarkEncodeNodeMessage(b *testing.B) {
	msg := deliveryMessage()
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeNodeMessage(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			stdEncode(b, msg)
		}
	})
}
