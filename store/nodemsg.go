package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// encodeNodeMessage encodes msg for a node channel, its events byte for
// byte (see Publish). A message of events alone, the one a delivery sends
// for every match, is written by hand: the same bytes encoding/json writes
// for it (SetEscapeHTML off), at a sixth of the cost
// (BenchmarkEncodeNodeMessage), without its reflection and its scan of
// each event. The events are frames lobbyd encoded with encoding/json, so
// valid JSON: the hand-written path checks only that they are compact
// and ASCII (what encoding/json would copy unchanged) and look like one
// object or array; anything else goes through encoding/json.
func encodeNodeMessage(msg domain.NodeMessage) ([]byte, error) {
	if msg.EventsOnly() && compactEvents(msg.Events) {
		return appendEventsMessage(make([]byte, 0, eventsMessageSize(msg.Events)), msg.Events), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(msg); err != nil {
		return nil, fmt.Errorf("encode node message: %w", err)
	}
	return b.Bytes(), nil
}

// compactEvents reports whether every event is one that encoding/json
// would copy unchanged (see plainJSON).
func compactEvents(events []domain.Addressed) bool {
	for _, e := range events {
		if !plainJSON(e.Event) {
			return false
		}
	}
	return true
}

// plainJSON reports whether b looks like a compact JSON object or array of
// printable ASCII: it starts with { or [ and ends with the matching
// bracket, its strings are closed, and it has no white space outside
// them. For valid JSON (lobbyd's frames are), encoding/json's compaction
// of such b is b itself. It does not validate b.
func plainJSON(b []byte) bool {
	if len(b) < 2 || !(b[0] == '{' && b[len(b)-1] == '}' || b[0] == '[' && b[len(b)-1] == ']') {
		return false
	}
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case c < 0x20 || c >= 0x7f:
			return false // white space outside a string, or non-ASCII anywhere
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == ' ':
			return false
		}
	}
	return !inString
}

// eventsMessageSize is about the encoded size of a message of events.
func eventsMessageSize(events []domain.Addressed) int {
	n := len(`{"events":[]}` + "\n")
	for _, e := range events {
		n += len(`{"to":[],"event":,"matchId":""},`) + len(e.Event) + len(e.MatchID)
		for _, p := range e.To {
			n += len(p) + 3
		}
	}
	return n
}

// appendEventsMessage appends the encoding of a message of events alone,
// as encoding/json writes it, newline included.
func appendEventsMessage(b []byte, events []domain.Addressed) []byte {
	b = append(b, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"to":`...)
		if e.To == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for j, p := range e.To {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, p)
			}
			b = append(b, ']')
		}
		b = append(b, `,"event":`...)
		b = append(b, e.Event...)
		if e.MatchID != "" {
			b = append(b, `,"matchId":`...)
			b = appendJSONString(b, e.MatchID)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// appendJSONString appends s as a JSON string as encoding/json writes it
// with SetEscapeHTML off: ids (the usual case) are copied between quotes;
// anything with a character to escape is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
