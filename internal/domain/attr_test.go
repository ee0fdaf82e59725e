package domain

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAttrValueJSON(t *testing.T) {
	for _, tc := range []struct {
		json string
		want AttrValue
	}{
		{`"ctf"`, AttrValue{Type: AttrString, Str: "ctf"}},
		{`["dust","harbor"]`, AttrValue{Type: AttrStrings, Strs: []string{"dust", "harbor"}}},
		{`[]`, AttrValue{Type: AttrStrings, Strs: []string{}}},
		{`12.5`, AttrValue{Type: AttrNumber, Num: 12.5}},
		{`{"mixed":["pc","xbox"]}`, AttrValue{Type: AttrString, Mixed: []string{"pc", "xbox"}}},
	} {
		var v AttrValue
		require.NoError(t, json.Unmarshal([]byte(tc.json), &v), tc.json)
		assert.Equal(t, tc.want, v, tc.json)
		b, err := json.Marshal(v)
		require.NoError(t, err)
		assert.JSONEq(t, tc.json, string(b))
	}
	for _, bad := range []string{`true`, `[1]`, `{"a":1}`, `{"mixed":[]}`} {
		var v AttrValue
		err := json.Unmarshal([]byte(bad), &v)
		assert.ErrorIs(t, err, ErrInvalid, bad)
	}
	var attrs map[string]AttrValue
	require.NoError(t, json.Unmarshal([]byte(`{"mode":null}`), &attrs))
	assert.Empty(t, attrs["mode"].Type, "null leaves the value without a type, for the queue's rules to refuse")
	_, err := json.Marshal(AttrValue{Type: AttrNumber, Num: math.Inf(1)})
	assert.Error(t, err, "no infinite numbers on the wire")
}

func TestMatchAttrJSON(t *testing.T) {
	for _, tc := range []struct {
		json string
		want MatchAttr
	}{
		{`"ctf"`, MatchAttr{Type: AttrString, Value: "ctf"}},
		{`["dust"]`, MatchAttr{Type: AttrStrings, Values: []string{"dust"}}},
		{`{"min":3,"max":9}`, MatchAttr{Type: AttrNumber, Min: 3, Max: 9}},
	} {
		b, err := json.Marshal(tc.want)
		require.NoError(t, err)
		assert.JSONEq(t, tc.json, string(b))
		var got MatchAttr
		require.NoError(t, json.Unmarshal(b, &got))
		assert.Equal(t, tc.want, got)
	}
}

func TestShardNames(t *testing.T) {
	assert.Equal(t, "ranked", ShardName("ranked", 0), "shard 0 keeps the queue's keys")
	assert.Equal(t, "ranked#3", ShardName("ranked", 3))
	assert.Equal(t, "ranked", BaseQueue("ranked#3"))
	assert.Equal(t, "ranked", BaseQueue("ranked"))
	assert.True(t, ValidQueueKey("ranked#3"))
	assert.True(t, ValidQueueKey("ranked"))
	for _, bad := range []string{"ranked#0", "ranked#", "ranked#01", "ranked#-1", "ranked#x", "#3", "a b#1", "ranked#1#2"} {
		assert.False(t, ValidQueueKey(bad), bad)
	}
}
