package lobby

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// BenchmarkParseEnvelope: a queue.join frame's type and id, read on every
// frame before its handler decodes the rest.
func BenchmarkParseEnvelope(b *testing.B) {
	frame := []byte(`{"type":"queue.join","id":"17","queue":"default","skill":1500,"regions":["NorthEurope","WestUs"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseEnvelope(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// The one-decode path of parseEnvelope answers as the field-by-field one
// does, for frames good and bad.
func TestParseEnvelopeFastPathAgrees(t *testing.T) {
	for _, frame := range []string{
		`{"type":"ping","id":"1"}`, `{"type":"ping"}`, `{"id":"1"}`, `{}`, `null`, `[]`, `"x"`, `{"type":null,"id":null}`,
		`{"TYPE":"ping","Id":"7"}`, `{"type":"ping","type":"queue.join","id":"a","id":"b"}`,
		`{"type":"ping","id":"` + strings.Repeat("é", 64) + `"}`, `{"type":"ping","id":"` + strings.Repeat("é", 65) + `"}`,
		`{"type":"ping","id":"\ud83d\ude00 \u00e9\n"}`, "{\"type\":\"ping\",\"id\":\"\xff\"}",
		`{"type":5,"id":"1"}`, `{"type":"ping","id":5}`, `{"type":"ping","id":"1",`, `{"type":"ping","extra":{"a":[1,2,{"b":null}]}}`,
	} {
		typ, id, err := parseEnvelope([]byte(frame))
		wantTyp, wantID, wantErr := parseEnvelopeByField([]byte(frame))
		assert.Equal(t, wantTyp, typ, frame)
		assert.Equal(t, wantID, id, frame)
		assert.Equal(t, wantErr, err, frame)
	}
}
