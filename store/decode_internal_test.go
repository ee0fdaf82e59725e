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

// previousTicketData is ticketData as the previous version of lobbyd
// declares it, before attributes.
type previousTicketData struct {
	ID        string          `json:"id"`
	Queue     string          `json:"queue"`
	Players   []domain.Player `json:"players"`
	Skill     float64         `json:"skill,omitempty"`
	Regions   []string        `json:"regions,omitempty"`
	Latencies map[string]int  `json:"latencies,omitempty"`
	LobbyID   string          `json:"lobbyId,omitempty"`
}

// During a rolling upgrade, a node of the previous version reads tickets
// this version wrote (with attributes) as it always did, and this version
// reads the previous version's tickets, without attributes.
func TestTicketDataAcrossVersions(t *testing.T) {
	d := ticketData{ID: "t1", Queue: "q", Players: []domain.Player{{ID: "p1"}}, Skill: 1500, LobbyID: "l1",
		Attributes: map[string]domain.AttrValue{"mode": {Type: domain.AttrString, Str: "ctf"},
			"platform": {Type: domain.AttrString, Mixed: []string{"pc", "xbox"}}}}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for name, unmarshal := range map[string]func([]byte, any) error{"goccy": gojson.Unmarshal, "encoding-json": json.Unmarshal} {
		var old previousTicketData
		if err := unmarshal(data, &old); err != nil {
			t.Fatalf("%s: the previous version cannot read a new ticket: %v", name, err)
		}
		if old.ID != "t1" || old.Skill != 1500 || old.LobbyID != "l1" || len(old.Players) != 1 {
			t.Fatalf("%s: the previous version reads %+v", name, old)
		}
	}
	prev, err := json.Marshal(previousTicketData{ID: "t2", Queue: "q", Players: []domain.Player{{ID: "p2"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSearchingEntry(searchingEntry(1, 0, prev))
	if err != nil || got.ID != "t2" || got.Attributes != nil {
		t.Fatalf("a previous version's ticket reads as %+v, %v", got, err)
	}
	got, err = decodeSearchingEntry(searchingEntry(1, 0, data))
	if err != nil || got.Attributes["platform"].Mixed[1] != "xbox" || got.Attributes["mode"].Str != "ctf" {
		t.Fatalf("a new ticket reads as %+v, %v", got, err)
	}
}
