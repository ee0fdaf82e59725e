package matchmaker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/internal/domain"
)

func num(v float64) *float64 { return &v }

func str(s string) domain.AttrValue { return domain.AttrValue{Type: domain.AttrString, Str: s} }

func strs(s ...string) domain.AttrValue { return domain.AttrValue{Type: domain.AttrStrings, Strs: s} }

func number(v float64) domain.AttrValue { return domain.AttrValue{Type: domain.AttrNumber, Num: v} }

func raw(m map[string]string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out
}

// resolveQueue takes mode and maps from the client, platform (required)
// and rank from the token, level from the client; skill from the client.
func resolveQueue() Queue {
	q := Queue{Name: "r", MaxUsers: 4, Regions: []string{"WestUs"}, Attributes: []Attribute{
		{Name: "mode", Type: domain.AttrString, Required: true, Values: []string{"ctf", "tdm"}},
		{Name: "maps", Type: domain.AttrStrings},
		{Name: "level", Type: domain.AttrNumber, MaxDistance: 5},
		{Name: "platform", Type: domain.AttrString, Source: SourceToken, Required: true},
		{Name: "rank", Type: domain.AttrNumber, Source: SourceToken},
		{Name: "dlc", Type: domain.AttrStrings, Source: SourceToken},
	}}
	q.ApplyDefaults()
	return q
}

func TestResolve(t *testing.T) {
	pc := map[string]domain.AttrValue{"platform": str("pc")}
	tokenQueue := DefaultQueues()[0]
	tokenQueue.Skill.Source = SourceToken
	for _, tc := range []struct {
		name      string
		q         Queue
		in        JoinInput
		wantSkill float64
		want      map[string]domain.AttrValue
		wantErr   error
		errHas    []string
	}{
		// Queues without the new fields: skill exactly as before.
		{name: "solo, no skill", q: DefaultQueues()[0], in: JoinInput{Members: []MemberInput{{PlayerID: "a"}}}},
		{name: "solo skill", q: DefaultQueues()[0], in: JoinInput{ClientSkill: num(1500), Members: []MemberInput{{PlayerID: "a"}}}, wantSkill: 1500},
		{name: "solo skill beside a token skill", q: DefaultQueues()[0],
			in: JoinInput{ClientSkill: num(1500), Members: []MemberInput{{PlayerID: "a", TokenSkill: num(900)}}}, wantSkill: 1500},
		{name: "lobby: members' mean, the owner's skill ignored", q: DefaultQueues()[0],
			in:        JoinInput{ClientSkill: num(5000), Members: []MemberInput{{PlayerID: "a", Skill: num(1000)}, {PlayerID: "b"}, {PlayerID: "c", Skill: num(2000)}}},
			wantSkill: 1500},
		{name: "lobby nobody rated: the owner's skill", q: DefaultQueues()[0],
			in: JoinInput{ClientSkill: num(1200), Members: []MemberInput{{PlayerID: "a"}, {PlayerID: "b"}}}, wantSkill: 1200},
		{name: "attributes to a queue without any", q: DefaultQueues()[0],
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{{PlayerID: "a"}}},
			wantErr: ErrBadAttribute, errHas: []string{`attribute "mode": not one of this queue's`}},

		// Skill from the token.
		{name: "token skill", q: tokenQueue, in: JoinInput{Members: []MemberInput{{PlayerID: "a", TokenSkill: num(1700)}}}, wantSkill: 1700},
		{name: "token skill, lobby mean", q: tokenQueue,
			in: JoinInput{Members: []MemberInput{{PlayerID: "a", TokenSkill: num(1000), Skill: num(9000)}, {PlayerID: "b", TokenSkill: num(1600)}}}, wantSkill: 1300},
		{name: "client skill to a token queue", q: tokenQueue,
			in: JoinInput{ClientSkill: num(3000), Members: []MemberInput{{PlayerID: "a", TokenSkill: num(1700)}}}, wantErr: ErrTokenField, errHas: []string{"skill"}},
		{name: "token without skill", q: tokenQueue,
			in: JoinInput{Members: []MemberInput{{PlayerID: "a", TokenSkill: num(1)}, {PlayerID: "b"}}}, wantErr: ErrTokenField, errHas: []string{"skill", "no skill"}},

		// Client attributes.
		{name: "client attributes", q: resolveQueue(),
			in: JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "maps": `["harbor","dust","harbor"]`, "level": `12`}),
				Members: []MemberInput{{PlayerID: "a", TokenAttrs: pc}}},
			want: map[string]domain.AttrValue{"mode": str("ctf"), "maps": strs("dust", "harbor"), "level": number(12), "platform": str("pc")}},
		{name: "optional ones left out", q: resolveQueue(),
			in:   JoinInput{ClientAttributes: raw(map[string]string{"mode": `"tdm"`}), Members: []MemberInput{{PlayerID: "a", TokenAttrs: pc}}},
			want: map[string]domain.AttrValue{"mode": str("tdm"), "platform": str("pc")}},
		{name: "unknown attribute", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "colour": `"red"`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"colour"`}},
		{name: "unknown odd name is not echoed", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{strings.Repeat("x", 100): `"red"`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{"(an invalid name)"}},
		{name: "wrong type", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `7`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"mode"`, "a string"}},
		{name: "null", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `null`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"mode"`}},
		{name: "mixed form from a client", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `{"mixed":["ctf","tdm"]}`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"mode"`}},
		{name: "outside the values", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"dm"`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"mode"`, "not one of the queue's values"}},
		{name: "a number beyond the bound", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "level": `1e300`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"level"`, "from -1e+15 to 1e+15"}},
		{name: "a number at the bound", q: resolveQueue(),
			in:   JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "level": `-1e15`}), Members: []MemberInput{{PlayerID: "a", TokenAttrs: pc}}},
			want: map[string]domain.AttrValue{"mode": str("ctf"), "level": number(-1e15), "platform": str("pc")}},
		{name: "required missing", q: resolveQueue(),
			in: JoinInput{Members: []MemberInput{{TokenAttrs: pc}}}, wantErr: ErrBadAttribute, errHas: []string{`"mode": required`}},
		{name: "too many values", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "maps": `[` + strings.Repeat(`"m",`, 32) + `"m"]`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"maps"`, "more than 32"}},
		{name: "value too long", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "maps": `["` + strings.Repeat("m", 65) + `"]`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"maps"`, "longer than 64 bytes"}},
		{name: "empty set", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "maps": `[]`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"maps"`, "at least one"}},
		{name: "number out of range", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "level": `1e999`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrBadAttribute, errHas: []string{`"level"`}},

		// Token attributes.
		{name: "client sends a token attribute", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`, "platform": `"pc"`}), Members: []MemberInput{{TokenAttrs: pc}}},
			wantErr: ErrTokenField, errHas: []string{`"platform"`}},
		{name: "token lacks a required attribute", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{{PlayerID: "a"}}},
			wantErr: ErrTokenField, errHas: []string{`"platform"`, "required"}},
		{name: "token attribute of the wrong type", q: resolveQueue(),
			in: JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}),
				Members: []MemberInput{{TokenAttrs: map[string]domain.AttrValue{"platform": number(1)}}}},
			wantErr: ErrTokenField, errHas: []string{`"platform"`, "not a string"}},
		{name: "lobby: members disagree on a string, numbers averaged, sets intersected", q: resolveQueue(),
			in: JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{
				{TokenAttrs: map[string]domain.AttrValue{"platform": str("xbox"), "rank": number(10), "dlc": strs("a", "b", "c")}},
				{TokenAttrs: map[string]domain.AttrValue{"platform": str("pc"), "rank": number(20), "dlc": strs("c", "b")}},
				{TokenAttrs: map[string]domain.AttrValue{"platform": str("pc")}}, // no rank, no dlc: accepts any
			}},
			want: map[string]domain.AttrValue{"mode": str("ctf"), "rank": number(15), "dlc": strs("b", "c"),
				"platform": {Type: domain.AttrString, Mixed: []string{"pc", "xbox"}}}},
		{name: "lobby: members agree", q: resolveQueue(),
			in:   JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{{TokenAttrs: pc}, {TokenAttrs: pc}}},
			want: map[string]domain.AttrValue{"mode": str("ctf"), "platform": str("pc")}},
		{name: "lobby: sets sharing nothing", q: resolveQueue(),
			in: JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{
				{TokenAttrs: map[string]domain.AttrValue{"platform": str("pc"), "dlc": strs("a")}},
				{TokenAttrs: map[string]domain.AttrValue{"platform": str("pc"), "dlc": strs("b")}}}},
			want: map[string]domain.AttrValue{"mode": str("ctf"), "platform": str("pc"), "dlc": strs()}},
		{name: "lobby: one member lacks a required token attribute", q: resolveQueue(),
			in:      JoinInput{ClientAttributes: raw(map[string]string{"mode": `"ctf"`}), Members: []MemberInput{{TokenAttrs: pc}, {}}},
			wantErr: ErrTokenField, errHas: []string{`"platform"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skill, attrs, err := tc.q.Resolve(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				for _, w := range tc.errHas {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantSkill, skill)
			if tc.want == nil {
				assert.Nil(t, attrs)
			} else {
				for k, v := range tc.want {
					if v.Type == domain.AttrStrings && v.Strs == nil {
						v.Strs = []string{}
						tc.want[k] = v
					}
				}
				assert.Equal(t, tc.want, attrs)
			}
		})
	}
}

// The sentinels are the error kinds the gateway maps to codes, and the
// forbidden one does not speak of lobby owners.
func TestResolveErrorKinds(t *testing.T) {
	assert.ErrorIs(t, ErrBadAttribute, domain.ErrInvalid)
	assert.ErrorIs(t, ErrTokenField, domain.ErrForbidden)
	assert.NotContains(t, ErrTokenField.Error(), "owner")
	_, _, err := resolveQueue().Resolve(JoinInput{ClientAttributes: raw(map[string]string{"mode": `"a-very-long-value-indeed"`}),
		Members: []MemberInput{{TokenAttrs: map[string]domain.AttrValue{"platform": str("pc")}}}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "a-very-long-value-indeed", "values are never echoed")
}
