package fakeplayfab

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits RequestPartyService enforces, from PlayFab's documentation.
const (
	maxDevices            = 128
	maxUsersPerDevice     = 8
	maxEndpointsPerDevice = 32
	maxIdentifierLength   = 127
	maxEntityKeys         = 1024
	// maxRegionLength is the fake's own bound, so that a descriptor stays
	// within PlayFab's 448 characters. Azure region names are far shorter.
	maxRegionLength = 64
)

// directPeerConnectivityOptions are the values PlayFab accepts.
var directPeerConnectivityOptions = []string{
	"None", "SamePlatformType", "DifferentPlatformType", "AnyPlatformType",
	"SameEntityLoginProvider", "DifferentEntityLoginProvider", "AnyEntityLoginProvider",
	"AnyPlatformTypeAndEntityLoginProvider", "OnlyServers",
}

// revocabilities are the values PlayFab accepts for Revocability.
var revocabilities = []string{"Creator", "Anyone"}

// partyRequest is RequestPartyService's body. Pointers tell a missing field
// from a zero one.
type partyRequest struct {
	PartyID              *string               `json:"PartyId"`
	NetworkConfiguration *networkConfiguration `json:"NetworkConfiguration"`
	PreferredRegions     []string              `json:"PreferredRegions"`
	PlayFabID            string                `json:"PlayFabId"`
	CustomTags           map[string]string     `json:"CustomTags"`
}

// networkConfiguration is PlayFab's PartyNetworkConfiguration.
type networkConfiguration struct {
	MaxUsers                      *int                     `json:"MaxUsers"`
	MaxDevices                    *int                     `json:"MaxDevices"`
	MaxUsersPerDevice             *int                     `json:"MaxUsersPerDevice"`
	MaxDevicesPerUser             *int                     `json:"MaxDevicesPerUser"`
	MaxEndpointsPerDevice         *int                     `json:"MaxEndpointsPerDevice"`
	DirectPeerConnectivityOptions *string                  `json:"DirectPeerConnectivityOptions"`
	PartyInvitationConfiguration  *invitationConfiguration `json:"PartyInvitationConfiguration"`
}

// invitationConfiguration is PlayFab's PartyInvitationConfiguration.
type invitationConfiguration struct {
	Identifier   *string     `json:"Identifier"`
	Revocability *string     `json:"Revocability"`
	EntityKeys   []entityKey `json:"EntityKeys"`
}

// partyID is the request's PartyId, or "" when none was given.
func (r *partyRequest) partyID() string {
	if r.PartyID == nil {
		return ""
	}
	return *r.PartyID
}

// invitationIdentifier is the requested invitation id, or "".
func (r *partyRequest) invitationIdentifier() string {
	nc := r.NetworkConfiguration
	if nc == nil || nc.PartyInvitationConfiguration == nil || nc.PartyInvitationConfiguration.Identifier == nil {
		return ""
	}
	return *nc.PartyInvitationConfiguration.Identifier
}

// validate returns every field error, keyed by field name as PlayFab's
// errorDetails are, or nil when the request is valid.
func (r *partyRequest) validate() map[string][]string {
	v := validator{}
	if id := r.partyID(); id != "" {
		if _, err := uuid.Parse(id); err != nil {
			v.add("PartyId", "The field PartyId must be a GUID.")
		}
	}
	if len(r.PreferredRegions) == 0 {
		v.add("PreferredRegions", "The PreferredRegions field is required.")
	}
	for _, region := range r.PreferredRegions {
		if region == "" || len(region) > maxRegionLength {
			v.add("PreferredRegions", fmt.Sprintf("Each of PreferredRegions must be a region name of 1 to %d characters.", maxRegionLength))
			break
		}
	}
	nc := r.NetworkConfiguration
	if nc == nil {
		v.add("NetworkConfiguration", "The NetworkConfiguration field is required.")
		return v.details
	}
	v.intRange("MaxUsers", nc.MaxUsers, true, 1, math.MaxInt32)
	v.intRange("MaxDevices", nc.MaxDevices, true, 1, maxDevices)
	v.intRange("MaxUsersPerDevice", nc.MaxUsersPerDevice, true, 1, maxUsersPerDevice)
	v.intRange("MaxDevicesPerUser", nc.MaxDevicesPerUser, true, 1, math.MaxInt32)
	// The tutorial leaves MaxEndpointsPerDevice out; missing counts as 0.
	v.intRange("MaxEndpointsPerDevice", nc.MaxEndpointsPerDevice, false, 0, maxEndpointsPerDevice)
	if opt := nc.DirectPeerConnectivityOptions; opt != nil {
		v.oneOf("DirectPeerConnectivityOptions", *opt, directPeerConnectivityOptions)
	}
	if inv := nc.PartyInvitationConfiguration; inv != nil {
		if inv.Identifier != nil && utf8.RuneCountInString(*inv.Identifier) > maxIdentifierLength {
			v.add("Identifier", fmt.Sprintf("The field Identifier must be a string with a maximum length of %d.", maxIdentifierLength))
		}
		if inv.Revocability != nil {
			v.oneOf("Revocability", *inv.Revocability, revocabilities)
		}
		if len(inv.EntityKeys) > maxEntityKeys {
			v.add("EntityKeys", fmt.Sprintf("The field EntityKeys must be a collection with a maximum length of %d.", maxEntityKeys))
		}
		for _, k := range inv.EntityKeys {
			if k.ID == "" || k.Type == "" {
				v.add("EntityKeys", "Every entry of EntityKeys requires both Id and Type.")
				break
			}
		}
	}
	return v.details
}

// validator collects field errors.
type validator struct {
	details map[string][]string
}

func (v *validator) add(field, message string) {
	if v.details == nil {
		v.details = make(map[string][]string)
	}
	v.details[field] = append(v.details[field], message)
}

// intRange checks lo <= *n <= hi; a missing value is an error when
// required and counts as 0 otherwise.
func (v *validator) intRange(field string, n *int, required bool, lo, hi int) {
	if n == nil {
		if required {
			v.add(field, "The "+field+" field is required.")
			return
		}
		n = new(int)
	}
	if *n < lo || *n > hi {
		v.add(field, fmt.Sprintf("The field %s must be between %d and %d.", field, lo, hi))
	}
}

// oneOf checks that value is one of allowed. Like .NET's enum binding,
// case does not matter.
func (v *validator) oneOf(field, value string, allowed []string) {
	for _, a := range allowed {
		if strings.EqualFold(value, a) {
			return
		}
	}
	v.add(field, fmt.Sprintf("The field %s must be one of: %s.", field, strings.Join(allowed, ", ")))
}

// lastField turns a JSON path such as "NetworkConfiguration.MaxUsers" into
// the field name PlayFab's errorDetails use, "MaxUsers".
func lastField(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
