package partyalloc

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// PartyRequester requests one party network; *PlayFabClient is one.
type PartyRequester interface {
	RequestParty(ctx context.Context, req PartyRequest) (Party, error)
}

// PlayFabAllocator allocates a match's party with RequestPartyService.
type PlayFabAllocator struct {
	Client PartyRequester
	// Networks holds each queue's network settings at start; MaxUsers is
	// taken from the match itself. SetNetworks replaces them.
	Networks map[string]NetworkConfiguration

	replaced atomic.Pointer[map[string]NetworkConfiguration]
}

// SetNetworks replaces the queues' network settings (a reloaded queue
// file). A queue it no longer lists keeps its last settings, so matches
// formed before a queue was removed still get their party.
func (a *PlayFabAllocator) SetNetworks(networks map[string]NetworkConfiguration) {
	merged := maps.Clone(a.networks())
	if merged == nil {
		merged = make(map[string]NetworkConfiguration, len(networks))
	}
	maps.Copy(merged, networks)
	a.replaced.Store(&merged)
}

// networks returns the settings in force.
func (a *PlayFabAllocator) networks() map[string]NetworkConfiguration {
	if n := a.replaced.Load(); n != nil {
		return *n
	}
	return a.Networks
}

// Allocate requests the match's party: PartyId is the match id on every
// attempt, PreferredRegions are the match's regions, and when every player
// has a PlayFab entity the invitation is restricted to exactly them.
func (a *PlayFabAllocator) Allocate(ctx context.Context, m domain.Match) (Party, error) {
	req, err := a.request(m)
	if err != nil {
		return Party{}, err
	}
	party, err := a.Client.RequestParty(ctx, req)
	if err != nil {
		return Party{}, fmt.Errorf("allocate match %s: %w", m.ID, err)
	}
	return party, nil
}

func (a *PlayFabAllocator) request(m domain.Match) (PartyRequest, error) {
	network, ok := a.networks()[domain.BaseQueue(m.Queue)] // a shard's match: its queue's
	if !ok {
		return PartyRequest{}, fmt.Errorf("allocate match %s: no network settings for queue %q", m.ID, m.Queue)
	}
	network.MaxUsers = len(m.Players)
	if keys := invitationKeys(m.Players); keys != nil {
		// The Party SDK needs the initial invitation revocable by Anyone;
		// EntityKeys is what restricts it (shared/spec/playfab.md).
		network.PartyInvitationConfiguration = &PartyInvitationConfiguration{
			Revocability: "Anyone", EntityKeys: keys,
		}
	}
	return PartyRequest{PartyID: m.ID, NetworkConfiguration: network, PreferredRegions: m.Regions}, nil
}

// invitationKeys lists the players' title_player_account entities, or nil
// unless every player has one: a partial list would lock the others out.
func invitationKeys(players []domain.Player) []EntityKey {
	keys := make([]EntityKey, 0, len(players))
	for _, p := range players {
		if p.PlayFabEntity == "" {
			return nil
		}
		keys = append(keys, EntityKey{ID: p.PlayFabEntity, Type: "title_player_account"})
	}
	return keys
}
