// Package partyalloc turns formed matches into PlayFab Party networks.
//
// It holds the PlayFab REST client (entity-token cache, RequestPartyService,
// retries), the allocation workers that consume the allocation stream, and,
// in the fakeplayfab subpackage, a faithful fake of PlayFab's wire contract.
package partyalloc

// NetworkConfiguration mirrors PlayFab's PartyNetworkConfiguration. Field names
// are PlayFab's, so the struct marshals to the exact wire shape.
type NetworkConfiguration struct {
	MaxUsers                      int                           `json:"MaxUsers"`
	MaxDevices                    int                           `json:"MaxDevices"`
	MaxUsersPerDevice             int                           `json:"MaxUsersPerDevice"`
	MaxDevicesPerUser             int                           `json:"MaxDevicesPerUser"`
	MaxEndpointsPerDevice         int                           `json:"MaxEndpointsPerDevice"`
	DirectPeerConnectivityOptions string                        `json:"DirectPeerConnectivityOptions,omitempty"`
	PartyInvitationConfiguration  *PartyInvitationConfiguration `json:"PartyInvitationConfiguration,omitempty"`
}

// PartyInvitationConfiguration mirrors PlayFab's type of the same name. With
// no EntityKeys anyone holding the invitation id may join.
type PartyInvitationConfiguration struct {
	Identifier   string      `json:"Identifier,omitempty"`
	Revocability string      `json:"Revocability,omitempty"`
	EntityKeys   []EntityKey `json:"EntityKeys,omitempty"`
}

// EntityKey identifies a PlayFab entity, such as a title_player_account.
type EntityKey struct {
	ID   string `json:"Id"`
	Type string `json:"Type"`
}

// PartyRequest is the body of Party/RequestPartyService.
type PartyRequest struct {
	PartyID              string               `json:"PartyId,omitempty"`
	NetworkConfiguration NetworkConfiguration `json:"NetworkConfiguration"`
	PreferredRegions     []string             `json:"PreferredRegions"`
	PlayFabID            string               `json:"PlayFabId,omitempty"`
	CustomTags           map[string]string    `json:"CustomTags,omitempty"`
}

// Party is what RequestPartyService returns: the network a match's players join.
type Party struct {
	PartyID                     string `json:"PartyId"`
	SerializedNetworkDescriptor string `json:"SerializedNetworkDescriptor"`
	InvitationID                string `json:"InvitationId"`
}
