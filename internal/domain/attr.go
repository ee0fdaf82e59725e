package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// AttrType is the type of a matchmaking attribute, as a queue file names
// it: a string (rule equal), a set of strings (rule intersect) or a
// number (rule distance).
type AttrType string

// Attribute types.
const (
	AttrString  AttrType = "string"
	AttrStrings AttrType = "strings"
	AttrNumber  AttrType = "number"
)

// AttrValue is a ticket's value of one attribute. Exactly one of Str,
// Strs, Num is meaningful, as Type says. A lobby ticket whose members'
// tokens disagree on a string attribute holds all their values in Mixed
// (sorted, distinct) and Str empty: it is compatible with nobody on that
// attribute until its rule relaxes to any.
//
// In JSON it is the value itself: "ctf", ["dust","harbor"], 12, or
// {"mixed":["pc","xbox"]} for a mixed string.
type AttrValue struct {
	Type  AttrType
	Str   string
	Strs  []string
	Num   float64
	Mixed []string
}

// MarshalJSON writes the value in its JSON form.
func (v AttrValue) MarshalJSON() ([]byte, error) {
	switch v.Type {
	case AttrString:
		if len(v.Mixed) > 0 {
			return json.Marshal(struct {
				Mixed []string `json:"mixed"`
			}{v.Mixed})
		}
		return json.Marshal(v.Str)
	case AttrStrings:
		return json.Marshal(nonNilStrings(v.Strs))
	case AttrNumber:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			return nil, fmt.Errorf("attribute value %v: %w", v.Num, ErrInvalid)
		}
		return json.Marshal(v.Num)
	}
	return nil, fmt.Errorf("attribute type %q: %w", v.Type, ErrInvalid)
}

// UnmarshalJSON reads a value in its JSON form; the type follows from the
// shape. Anything else (true, an array holding a non-string, an object
// other than {"mixed": [...]}) is ErrInvalid. A JSON null leaves the
// value as it is (zero, with no Type, in a fresh map entry), which every
// queue's rules refuse.
func (v *AttrValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	bad := fmt.Errorf("attribute value must be a string, a number or an array of strings: %w", ErrInvalid)
	if len(b) == 0 {
		return bad
	}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad
		}
		*v = AttrValue{Type: AttrString, Str: s}
	case '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return bad
		}
		*v = AttrValue{Type: AttrStrings, Strs: nonNilStrings(ss)}
	case '{':
		var m struct {
			Mixed []string `json:"mixed"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Mixed) == 0 {
			return bad
		}
		*v = AttrValue{Type: AttrString, Mixed: m.Mixed}
	default:
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return bad
		}
		*v = AttrValue{Type: AttrNumber, Num: n}
	}
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MatchAttr is a match's value of one attribute, as match.found and
// match.ready report it: for equal, the common value (a match whose equal
// rule was relaxed to any has no entry for it); for intersect, the values
// every ticket shares, sorted; for distance, the lowest and highest
// ticket value.
type MatchAttr struct {
	Type     AttrType
	Value    string
	Values   []string
	Min, Max float64
}

// MarshalJSON writes "ctf", ["dust"], or {"min":x,"max":y}.
func (a MatchAttr) MarshalJSON() ([]byte, error) {
	switch {
	case a.Type == AttrString:
		return json.Marshal(a.Value)
	case a.Type == AttrStrings:
		return json.Marshal(nonNilStrings(a.Values))
	case a.Type == AttrNumber:
		return json.Marshal(struct {
			Min float64 `json:"min"`
			Max float64 `json:"max"`
		}{a.Min, a.Max})
	}
	return nil, fmt.Errorf("attribute type %q: %w", a.Type, ErrInvalid)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *MatchAttr) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		*a = MatchAttr{Type: AttrString}
		return json.Unmarshal(b, &a.Value)
	case len(b) > 0 && b[0] == '[':
		*a = MatchAttr{Type: AttrStrings}
		return json.Unmarshal(b, &a.Values)
	}
	var r struct{ Min, Max float64 }
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*a = MatchAttr{Type: AttrNumber, Min: r.Min, Max: r.Max}
	return nil
}

// Quality describes how good a formed match is, as match.found and
// match.ready report it.
type Quality struct {
	// SkillSpread is the highest minus the lowest ticket skill.
	SkillSpread float64 `json:"skillSpread"`
	// TeamImbalance is the largest difference between two teams' mean
	// skill (0 without teams).
	TeamImbalance float64 `json:"teamImbalance"`
	// Relaxed names the rules that were relaxed for this match (attribute
	// names, "latency", "skill", "teams"), sorted; empty when none was.
	Relaxed []string `json:"relaxed"`
	// WaitMs is the oldest ticket's wait when the match was formed.
	WaitMs int64 `json:"waitMs"`
}

// SortedUnique returns the distinct strings of s, sorted (a new slice).
func SortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
