package domain

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ruleLobby is the lobby every rule case starts from: owned by ann, with
// ann (ready) and bob (not ready), room for three, open and public.
func ruleLobby() Lobby {
	return Lobby{ID: "L", Code: "OLDCODE", Queue: "default", Visibility: "public", OwnerID: "ann",
		MaxMembers: 3, Props: map[string]string{"map": "dust"}, Status: LobbyOpen, Version: 7,
		Members: []LobbyMember{{PlayerID: "ann", Name: "Ann", Ready: true}, {PlayerID: "bob", Name: "Bob"}}}
}

func TestLobbyRules(t *testing.T) {
	skill := 1500.0
	tests := []struct {
		name string
		// setup changes the starting lobby before the rule runs.
		setup func(l *Lobby)
		rule  LobbyRule
		// want is the error (matched with errors.Is) or nil; check looks
		// at the lobby after an applied rule.
		want  error
		check func(t *testing.T, l Lobby)
	}{
		{name: "join adds the player last", rule: JoinRule(LobbyMember{PlayerID: "cat"}),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, []string{"ann", "bob", "cat"}, l.MemberIDs())
			}},
		{name: "join by a member changes nothing", rule: JoinRule(LobbyMember{PlayerID: "bob"}), want: ErrUnchanged},
		{name: "join a full lobby", setup: func(l *Lobby) { l.MaxMembers = 2 },
			rule: JoinRule(LobbyMember{PlayerID: "cat"}), want: ErrFull},
		{name: "join a queued lobby", setup: func(l *Lobby) { l.Status = LobbyQueued },
			rule: JoinRule(LobbyMember{PlayerID: "cat"}), want: ErrConflict},

		{name: "leave by a member", rule: LeaveRule("bob"),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, []string{"ann"}, l.MemberIDs())
				assert.Equal(t, "ann", l.OwnerID)
			}},
		{name: "the owner leaving hands the lobby to the earliest joiner", rule: LeaveRule("ann"),
			setup: func(l *Lobby) {
				l.Members = append(l.Members, LobbyMember{PlayerID: "cat"})
			},
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, []string{"bob", "cat"}, l.MemberIDs())
				assert.Equal(t, "bob", l.OwnerID)
			}},
		{name: "the last member leaving leaves no one", setup: func(l *Lobby) { l.Members = l.Members[:1] },
			rule:  LeaveRule("ann"),
			check: func(t *testing.T, l Lobby) { assert.Empty(t, l.Members) }},
		{name: "leave by a stranger", rule: LeaveRule("cat"), want: ErrNotFound},

		{name: "kick by the owner", rule: KickRule("ann", "bob"),
			check: func(t *testing.T, l Lobby) { assert.Equal(t, []string{"ann"}, l.MemberIDs()) }},
		{name: "kick by a member who is not the owner", rule: KickRule("bob", "ann"), want: ErrForbidden},
		{name: "kick of a stranger", rule: KickRule("ann", "cat"), want: ErrNotFound},
		{name: "the owner kicking themselves", rule: KickRule("ann", "ann"), want: ErrInvalid},
		{name: "a member kicking themselves", rule: KickRule("bob", "bob"), want: ErrInvalid},

		{name: "promote by the owner", rule: PromoteRule("ann", "bob"),
			check: func(t *testing.T, l Lobby) { assert.Equal(t, "bob", l.OwnerID) }},
		{name: "promote by a member", rule: PromoteRule("bob", "bob"), want: ErrForbidden},
		{name: "promote a stranger", rule: PromoteRule("ann", "cat"), want: ErrNotFound},

		{name: "update by the owner", rule: UpdateRule("ann", LobbyPatch{Props: map[string]string{"mode": "ctf"}, MaxMembers: 4}),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, map[string]string{"mode": "ctf"}, l.Props)
				assert.Equal(t, 4, l.MaxMembers)
				assert.Equal(t, "public", l.Visibility)
				assert.Equal(t, "OLDCODE", l.Code)
			}},
		{name: "update by a member", rule: UpdateRule("bob", LobbyPatch{MaxMembers: 4}), want: ErrForbidden},
		{name: "update below the members there are", rule: UpdateRule("ann", LobbyPatch{MaxMembers: 1}), want: ErrInvalid},
		{name: "a public lobby turning private takes the new code", rule: UpdateRule("ann", LobbyPatch{Visibility: "private", NewCode: "NEWCODE"}),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, "private", l.Visibility)
				assert.Equal(t, "NEWCODE", l.Code)
			}},
		{name: "a private lobby staying private keeps its code", setup: func(l *Lobby) { l.Visibility = "private" },
			rule:  UpdateRule("ann", LobbyPatch{Visibility: "private", NewCode: "NEWCODE"}),
			check: func(t *testing.T, l Lobby) { assert.Equal(t, "OLDCODE", l.Code) }},
		{name: "a private lobby turning public keeps its code", setup: func(l *Lobby) { l.Visibility = "private" },
			rule: UpdateRule("ann", LobbyPatch{Visibility: "public"}),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, "public", l.Visibility)
				assert.Equal(t, "OLDCODE", l.Code)
			}},

		{name: "ready with a skill", rule: ReadyRule("bob", true, &skill),
			check: func(t *testing.T, l Lobby) {
				require.NotNil(t, l.Members[1].Skill)
				assert.True(t, l.Members[1].Ready)
				assert.Equal(t, 1500.0, *l.Members[1].Skill)
			}},
		{name: "unready keeps the skill", setup: func(l *Lobby) { l.Members[0].Skill = &skill },
			rule: ReadyRule("ann", false, nil),
			check: func(t *testing.T, l Lobby) {
				assert.False(t, l.Members[0].Ready)
				assert.NotNil(t, l.Members[0].Skill)
			}},
		{name: "ready by a stranger", rule: ReadyRule("cat", true, nil), want: ErrNotFound},
		{name: "ready while queued", setup: func(l *Lobby) { l.Status = LobbyQueued },
			rule: ReadyRule("bob", true, nil), want: ErrConflict},

		{name: "queue with everyone ready", setup: func(l *Lobby) { l.Members[1].Ready = true },
			rule: QueueRule("ann", "T1", []string{"ann", "bob"}),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, LobbyQueued, l.Status)
				assert.Equal(t, "T1", l.TicketID)
			}},
		{name: "queue by a member", rule: QueueRule("bob", "T1", []string{"ann", "bob"}), want: ErrForbidden},
		{name: "queue with a member not ready", rule: QueueRule("ann", "T1", []string{"ann", "bob"}), want: errNotReady},
		{name: "queue after the members changed", setup: func(l *Lobby) { l.Members[1].Ready = true },
			rule: QueueRule("ann", "T1", []string{"ann"}), want: errMembersMove},
		{name: "queue again with the same ticket changes nothing",
			setup: func(l *Lobby) { l.Status, l.TicketID = LobbyQueued, "T1" },
			rule:  QueueRule("ann", "T1", []string{"ann", "bob"}), want: ErrUnchanged},
		{name: "queue with another ticket while queued",
			setup: func(l *Lobby) { l.Status, l.TicketID = LobbyQueued, "T1" },
			rule:  QueueRule("ann", "T2", []string{"ann", "bob"}), want: errQueued},

		{name: "a cancelled ticket reopens the lobby",
			setup: func(l *Lobby) { l.Status, l.TicketID = LobbyQueued, "T1" },
			rule:  TicketDoneRule("T1", LobbyOpen),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, LobbyOpen, l.Status)
				assert.Empty(t, l.TicketID)
				assert.True(t, l.Members[0].Ready, "readiness stays for a requeue")
			}},
		{name: "a matched ticket unreadies everyone",
			setup: func(l *Lobby) { l.Status, l.TicketID = LobbyQueued, "T1" },
			rule:  TicketDoneRule("T1", LobbyMatched),
			check: func(t *testing.T, l Lobby) {
				assert.Equal(t, LobbyMatched, l.Status)
				assert.Equal(t, "T1", l.TicketID)
				for _, m := range l.Members {
					assert.False(t, m.Ready, m.PlayerID)
				}
			}},
		{name: "a stale ticket changes nothing",
			setup: func(l *Lobby) { l.Status, l.TicketID = LobbyQueued, "T2" },
			rule:  TicketDoneRule("T1", LobbyOpen), want: ErrStaleTicket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ruleLobby()
			if tt.setup != nil {
				tt.setup(&l)
			}
			before := ruleLobby()
			if tt.setup != nil {
				tt.setup(&before)
			}
			err := tt.rule(&l)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				assert.Equal(t, before, l, "a refused rule leaves the lobby as it was")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, before.Version, l.Version, "the version is the applier's")
			if tt.check != nil {
				tt.check(t, l)
			}
		})
	}
}

// Check answers what the rule would, and changes nothing of the lobby it
// was asked about, members and props included.
func TestCheckLeavesTheLobbyAsItIs(t *testing.T) {
	l := Lobby{ID: "l", OwnerID: "ann", MaxMembers: 4, Status: LobbyOpen, Props: map[string]string{"map": "dust"},
		Members: []LobbyMember{{PlayerID: "ann", Ready: true}, {PlayerID: "bob"}}}
	before := Lobby{ID: "l", OwnerID: "ann", MaxMembers: 4, Status: LobbyOpen, Props: map[string]string{"map": "dust"},
		Members: []LobbyMember{{PlayerID: "ann", Ready: true}, {PlayerID: "bob"}}}

	assert.NoError(t, l.Check(KickRule("ann", "bob")))
	assert.NoError(t, l.Check(ReadyRule("bob", true, nil)))
	assert.NoError(t, l.Check(UpdateRule("ann", LobbyPatch{Props: map[string]string{"map": "nuke"}})))
	assert.ErrorIs(t, l.Check(QueueRule("ann", "", l.MemberIDs())), ErrConflict, "bob is not ready")
	assert.ErrorIs(t, l.Check(KickRule("bob", "ann")), ErrForbidden)
	assert.Equal(t, before, l)
}
