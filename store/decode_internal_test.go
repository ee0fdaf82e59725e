package store

import (
	"encoding/json"
	"fmt"
	"testing"

	gojson "github.com/goccy/go-json"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// BenchmarkDecodeSearchingEntry measures decoding one solo ticket's
// searching entry, the leader's hottest JSON, with goccy/go-json (what
// decodeSearchingEntry uses) against encoding/json.
func BenchmarkDecodeSearchingEntry(b *testing.B) {
	data, err := json.Marshal(ticketData{ticketFixed: ticketFixed{ID: "0b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Queue: "default",
		Players: []domain.Player{{ID: "5b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Name: "player"}}}})
	if err != nil {
		b.Fatal(err)
	}
	entry := searchingEntry(1700000000000, 0, data)
	b.Run("entry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSearchingEntry(entry, nil); err != nil {
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
// declares it, before attributes: a frozen copy of ticketFixed, on
// purpose, so that a later change to ticketFixed cannot change what this
// test takes the previous version to be.
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
	d := ticketData{ticketFixed: ticketFixed{ID: "t1", Queue: "q", Players: []domain.Player{{ID: "p1"}}, Skill: 1500, LobbyID: "l1"},
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
	got, err := decodeSearchingEntry(searchingEntry(1, 0, prev), attrCache{})
	if err != nil || got.ID != "t2" || got.Attributes != nil {
		t.Fatalf("a previous version's ticket reads as %+v, %v", got, err)
	}
	got, err = decodeSearchingEntry(searchingEntry(1, 0, data), attrCache{})
	if err != nil || got.Attributes["platform"].Mixed[1] != "xbox" || got.Attributes["mode"].Str != "ctf" {
		t.Fatalf("a new ticket reads as %+v, %v", got, err)
	}
}

// BenchmarkDecodeSearchingEntryAttributes is BenchmarkDecodeSearchingEntry
// for a ticket of a queue with two attributes, a mode and a map vote.
func BenchmarkDecodeSearchingEntryAttributes(b *testing.B) {
	data, err := json.Marshal(ticketData{ticketFixed: ticketFixed{ID: "0b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Queue: "ranked5v5", Skill: 1512,
		Players: []domain.Player{{ID: "5b6c1c9e-9a4e-4d43-9a57-0a0c1f2d3e4f", Name: "player"}}},
		Attributes: map[string]domain.AttrValue{"mode": {Type: domain.AttrString, Str: "ctf"},
			"maps": {Type: domain.AttrStrings, Strs: []string{"dust", "harbor"}}}})
	if err != nil {
		b.Fatal(err)
	}
	entry := searchingEntry(1700000000000, 0, data)
	for name, cache := range map[string]func() attrCache{"alone": func() attrCache { return nil }, "shared": func() attrCache { return attrCache{} }} {
		b.Run(name, func(b *testing.B) {
			c := cache()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeSearchingEntry(entry, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The scanner of stored attributes reads what encoding/json writes exactly
// as domain.AttrValue's own decoder does, and leaves everything else to
// it.
func TestScanAttrs(t *testing.T) {
	values := []domain.AttrValue{
		{Type: domain.AttrString, Str: "ctf"},
		{Type: domain.AttrString, Str: `quote " and \ backslash`},
		{Type: domain.AttrString, Str: "naïve ☃"},
		{Type: domain.AttrString, Str: "<html>&"},
		{Type: domain.AttrString, Str: ""},
		{Type: domain.AttrStrings, Strs: []string{}},
		{Type: domain.AttrStrings, Strs: []string{"dust", "harbor"}},
		{Type: domain.AttrStrings, Strs: []string{"a,b", "c]"}},
		{Type: domain.AttrNumber, Num: 12},
		{Type: domain.AttrNumber, Num: -0.5},
		{Type: domain.AttrNumber, Num: 1e21},
		{Type: domain.AttrString, Mixed: []string{"pc", "xbox"}},
	}
	for i, v := range values {
		for _, w := range values[:i+1] {
			attrs := map[string]domain.AttrValue{"a": v, "b,\"c": w, "level": {Type: domain.AttrNumber, Num: 3}}
			b, err := json.Marshal(ticketData{ticketFixed: ticketFixed{ID: "t"}, Attributes: attrs})
			if err != nil {
				t.Fatal(err)
			}
			var d ticketData
			if err := gojson.Unmarshal(b, &d); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			want := map[string]domain.AttrValue{}
			for k, x := range attrs {
				var y domain.AttrValue
				raw, _ := json.Marshal(x)
				if err := y.UnmarshalJSON(raw); err != nil {
					t.Fatal(err)
				}
				want[k] = y
			}
			if fmt.Sprint(map[string]domain.AttrValue(d.Attributes)) != fmt.Sprint(want) {
				t.Fatalf("%s reads as %v, want %v", b, d.Attributes, want)
			}
		}
	}
	for _, raw := range []string{`{}`, `{ "a": "x" }`, `{"a":[1]}`, `{"a":true}`, `{"a":"x",}`, `{"a":["x",]}`, `{"a":["x" "y"]}`, `{"a"}`, `{"a":"x"`, `{"a":[`} {
		_, fast := scanAttrs([]byte(raw))
		var a storedAttrs
		err := a.UnmarshalJSON([]byte(raw))
		if raw == `{}` {
			if !fast || err != nil || len(a) != 0 {
				t.Fatalf("{}: fast %v, %v, %v", fast, a, err)
			}
			continue
		}
		if fast {
			t.Fatalf("%s taken by the scanner", raw)
		}
		if raw == `{ "a": "x" }` && (err != nil || a["a"].Str != "x") {
			t.Fatalf("%s: %v, %v", raw, a, err)
		}
		if raw != `{ "a": "x" }` && err == nil {
			t.Fatalf("%s accepted: %v", raw, a)
		}
	}
}
