package store

import (
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// BenchmarkDecodeSearchingEntry measures decoding one solo ticket's
// searching entry, the leader's hottest JSON, with goccy/go-json (what
// decodeSearchingEntry uses) against encoding/json.
func BenchmarkDecodeSearchingEntry(b *testing.B) {
	data, err := json.Marshal(ticketData{ID: "0b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Queue: "default",
		Players: []domain.Player{{ID: "5b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Name: "player"}}})
	if err != nil {
		b.Fatal(err)
	}
	entry := searchingEntry(1700000000000, 0, data)
	b.Run("entry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSearchingEntry(entry); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, unmarshal := range map[string]func([]byte, any) error{"goccy": gojson.Unmarshal, "encoding-json": json.Unmarshal} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d ticketData
				if err := unmarshal(data, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
