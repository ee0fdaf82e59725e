package matchmaker

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// Errors of Resolve, which the gateway maps to protocol error codes.
var (
	// ErrBadAttribute means queue.join's attributes break the queue's
	// rules: an unknown name, a wrong type, a value outside the queue's
	// values or over the caps (MaxAttrValues, MaxAttrValueBytes), a
	// missing required attribute. It is a kind of domain.ErrInvalid
	// (bad_request); the message names the attribute.
	ErrBadAttribute = fmt.Errorf("bad attribute: %w", domain.ErrInvalid)
	// ErrTokenField means a value the queue takes from the player's token
	// was sent by the client (an attribute of source token, or skill with
	// skill.source token), or a token lacks what the queue requires of it.
	// It is a kind of domain.ErrForbidden (forbidden); the message names
	// the field.
	ErrTokenField error = &kindError{msg: "the player's token sets this field", kind: domain.ErrForbidden}
)

// kindError is a sentinel with its own message that is also a kind of
// another error: domain.ErrForbidden's message speaks of lobby owners.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// JoinInput is what a queue.join brings, split by where each part came from.
type JoinInput struct {
	ClientSkill      *float64                   // queue.join "skill", if sent
	ClientAttributes map[string]json.RawMessage // queue.join "attributes", as sent
	Members          []MemberInput              // one per player of the ticket, in order (one for a solo ticket)
}

// MemberInput is one player of a ticket, with what their token and their
// lobby membership say.
type MemberInput struct {
	PlayerID   string
	Skill      *float64                    // a lobby member's own skill (lobby.ready), solo: nil
	TokenSkill *float64                    // the JWT claim "skill"
	TokenAttrs map[string]domain.AttrValue // the JWT claim "attrs"
}

// Resolve checks in against the queue's rules and returns the ticket's skill and attributes.
//
// Skill with source client (the default) is, as before attributes: the
// mean of the members' own skills when any member gave one (a lobby),
// else ClientSkill, else 0. With source token it is the mean of the
// members' token skills; a client-sent skill, or a member whose token has
// none, is ErrTokenField.
//
// Attributes of source client come from ClientAttributes (for a lobby,
// the owner's request); those of source token from each member's token:
// a string on which members disagree becomes a mixed value (every
// distinct value, sorted: compatible with nobody until its rule relaxes
// to any), a strings attribute is the intersection of the members' sets,
// a number the members' mean. A member whose token lacks a non-required
// attribute accepts any value, so only the members who have it count.
// Errors are ErrBadAttribute and ErrTokenField, wrapped with the
// attribute's name (never a value); attributes come out in a new map, nil
// when there are none.
func (q Queue) Resolve(in JoinInput) (skill float64, attrs map[string]domain.AttrValue, err error) {
	if skill, err = q.resolveSkill(in); err != nil {
		return 0, nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(in.ClientAttributes)) {
		a, ok := q.attribute(name)
		if !ok {
			return 0, nil, fmt.Errorf("attribute %s: not one of this queue's: %w", quoteName(name), ErrBadAttribute)
		}
		if a.effectiveSource() == SourceToken {
			return 0, nil, fmt.Errorf("attribute %q: taken from the token, the client may not send it: %w", name, ErrTokenField)
		}
		var v domain.AttrValue
		if json.Unmarshal(in.ClientAttributes[name], &v) != nil || v.Type != a.Type || len(v.Mixed) > 0 {
			return 0, nil, fmt.Errorf("attribute %q: must be %s: %w", name, typeWords[a.Type], ErrBadAttribute)
		}
		if v, err = a.checkValue(v); err != nil {
			return 0, nil, fmt.Errorf("attribute %q: %w: %w", name, err, ErrBadAttribute)
		}
		attrs = setAttr(attrs, name, v)
	}
	for _, a := range q.Attributes {
		if a.effectiveSource() == SourceClient {
			if _, ok := attrs[a.Name]; !ok && a.Required {
				return 0, nil, fmt.Errorf("attribute %q: required: %w", a.Name, ErrBadAttribute)
			}
			continue
		}
		v, ok, err := a.fromTokens(in.Members)
		if err != nil {
			return 0, nil, fmt.Errorf("attribute %q: %w: %w", a.Name, err, ErrTokenField)
		}
		if ok {
			attrs = setAttr(attrs, a.Name, v)
		}
	}
	return skill, attrs, nil
}

var typeWords = map[domain.AttrType]string{
	domain.AttrString:  "a string",
	domain.AttrStrings: "an array of strings",
	domain.AttrNumber:  "a number",
}

// quoteName quotes an attribute name a client sent, unless it could not be
// a name at all (a long or odd key is not echoed).
func quoteName(name string) string {
	if domain.ValidName(name) {
		return fmt.Sprintf("%q", name)
	}
	return "(an invalid name)"
}

func setAttr(attrs map[string]domain.AttrValue, name string, v domain.AttrValue) map[string]domain.AttrValue {
	if attrs == nil {
		attrs = make(map[string]domain.AttrValue)
	}
	attrs[name] = v
	return attrs
}

// resolveSkill is Resolve's skill.
func (q Queue) resolveSkill(in JoinInput) (float64, error) {
	if q.Skill.Source == SourceToken {
		if in.ClientSkill != nil {
			return 0, fmt.Errorf("skill: taken from the token, the client may not send it: %w", ErrTokenField)
		}
		if len(in.Members) == 0 {
			return 0, fmt.Errorf("skill: no player's token: %w", ErrTokenField)
		}
		sum := 0.0
		for _, m := range in.Members {
			if m.TokenSkill == nil || !finite(*m.TokenSkill) {
				return 0, fmt.Errorf("skill: the token carries no skill: %w", ErrTokenField)
			}
			sum += *m.TokenSkill
		}
		return sum / float64(len(in.Members)), nil
	}
	sum, rated := 0.0, 0
	for _, m := range in.Members {
		if m.Skill != nil {
			sum += *m.Skill
			rated++
		}
	}
	switch {
	case rated > 0:
		return sum / float64(rated), nil // a lobby's skill is its members' mean
	case in.ClientSkill != nil:
		if !finite(*in.ClientSkill) {
			return 0, fmt.Errorf("skill: must be a finite number: %w", ErrBadAttribute)
		}
		return *in.ClientSkill, nil
	}
	return 0, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// attributesFit reports whether every attribute of a ticket is one of the
// queue's, of its type: what Resolve produces. (A mixed value is a string
// attribute's, from tokens.)
func (q Queue) attributesFit(attrs map[string]domain.AttrValue) bool {
	for name, v := range attrs {
		a, ok := q.attribute(name)
		if !ok || v.Type != a.Type || (len(v.Mixed) > 0 && a.effectiveSource() != SourceToken) {
			return false
		}
	}
	return true
}

// checkValue checks a value of the attribute's type against the caps and
// the allow-list, and returns it normalised (a set sorted, without
// repeats). Errors say what is wrong without the value.
func (a Attribute) checkValue(v domain.AttrValue) (domain.AttrValue, error) {
	allowed := func(s string) error {
		switch {
		case s == "":
			return fmt.Errorf("an empty string is not a value")
		case len(s) > MaxAttrValueBytes:
			return fmt.Errorf("a value is longer than %d bytes", MaxAttrValueBytes)
		case len(a.Values) > 0 && !slices.Contains(a.Values, s):
			return fmt.Errorf("not one of the queue's values")
		}
		return nil
	}
	switch v.Type {
	case domain.AttrString:
		if err := allowed(v.Str); err != nil {
			return v, err
		}
	case domain.AttrStrings:
		if len(v.Strs) == 0 {
			return v, fmt.Errorf("needs at least one value")
		}
		if len(v.Strs) > MaxAttrValues {
			return v, fmt.Errorf("more than %d values", MaxAttrValues)
		}
		for _, s := range v.Strs {
			if err := allowed(s); err != nil {
				return v, err
			}
		}
		v.Strs = domain.SortedUnique(v.Strs)
	case domain.AttrNumber:
		if !finite(v.Num) || math.Abs(v.Num) > domain.MaxAttrNumber {
			return v, fmt.Errorf("must be a number from %g to %g", -domain.MaxAttrNumber, domain.MaxAttrNumber)
		}
	}
	return v, nil
}

// fromTokens merges the members' token values of a token attribute: ok is
// false when no member has one (and it is not required).
func (a Attribute) fromTokens(members []MemberInput) (v domain.AttrValue, ok bool, err error) {
	var vals []domain.AttrValue
	for _, m := range members {
		tv, has := m.TokenAttrs[a.Name]
		if !has {
			if a.Required {
				return v, false, fmt.Errorf("required, and the token has none")
			}
			continue
		}
		if tv.Type != a.Type || len(tv.Mixed) > 0 {
			return v, false, fmt.Errorf("the token's value is not %s", typeWords[a.Type])
		}
		if tv, err = a.checkValue(tv); err != nil {
			return v, false, fmt.Errorf("the token's value: %w", err)
		}
		vals = append(vals, tv)
	}
	if len(vals) == 0 {
		return v, false, nil
	}
	v = domain.AttrValue{Type: a.Type}
	switch a.Type {
	case domain.AttrString:
		var distinct []string
		for _, tv := range vals {
			distinct = append(distinct, tv.Str)
		}
		if distinct = domain.SortedUnique(distinct); len(distinct) == 1 {
			v.Str = distinct[0]
		} else {
			v.Mixed = distinct
		}
	case domain.AttrStrings:
		v.Strs = slices.Clone(vals[0].Strs) // narrowed in place: the members' values stay theirs
		for _, tv := range vals[1:] {
			v.Strs = keepShared(v.Strs, tv.Strs)
		}
		v.Strs = slices.Clip(v.Strs) // may be empty: compatible with nobody until relaxed
		if v.Strs == nil {
			v.Strs = []string{}
		}
	case domain.AttrNumber:
		for _, tv := range vals {
			v.Num += tv.Num
		}
		v.Num /= float64(len(vals))
	}
	return v, true, nil
}
