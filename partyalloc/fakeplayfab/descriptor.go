package fakeplayfab

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// descriptorMagic starts every descriptor the fake makes: "FPN" and a
// format version.
var descriptorMagic = []byte{'F', 'P', 'N', 1}

// DescriptorInfo is what a fake SerializedNetworkDescriptor embeds. Real
// descriptors appear to embed the same three facts, in PlayFab's own format.
type DescriptorInfo struct {
	// PartyID is the party's GUID in canonical lower-case form.
	PartyID string
	// NetworkID identifies the network created. It is the same for every
	// reply to one PartyId in ModeDedupe and new on every call in
	// ModeNewParty.
	NetworkID string
	// Region is the region the network was created in: the first of the
	// request's PreferredRegions.
	Region string
	// RelayHost is the relay's host name, "relay-<region>.fake.playfab".
	RelayHost string
}

// EncodeDescriptor returns the SerializedNetworkDescriptor the fake makes
// for a network of the party in the region, relay host included, so that
// tools feeding lobbyd without the fake can hand out descriptors of the
// same layout and length. DecodeDescriptor reads it back.
//
// The layout is magic, party and network GUIDs, then the region and relay
// host each prefixed by its length in one byte, in standard base64. With
// regions of at most maxRegionLength bytes the result is at most 248
// characters, within PlayFab's 448.
func EncodeDescriptor(partyID, networkID uuid.UUID, region string) string {
	host := relayHost(region)
	var b bytes.Buffer
	b.Write(descriptorMagic)
	b.Write(partyID[:])
	b.Write(networkID[:])
	b.WriteByte(byte(len(region)))
	b.WriteString(region)
	b.WriteByte(byte(len(host)))
	b.WriteString(host)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// DecodeDescriptor reads a SerializedNetworkDescriptor made by the fake, so
// that a test can tell which party and region it belongs to.
func DecodeDescriptor(s string) (DescriptorInfo, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return DescriptorInfo{}, fmt.Errorf("decode descriptor: %w", err)
	}
	if !bytes.HasPrefix(raw, descriptorMagic) {
		return DescriptorInfo{}, errors.New("decode descriptor: not made by fakeplayfab")
	}
	raw = raw[len(descriptorMagic):]
	if len(raw) < 32 {
		return DescriptorInfo{}, errors.New("decode descriptor: truncated")
	}
	partyID, _ := uuid.FromBytes(raw[:16]) // 16 bytes always parse
	networkID, _ := uuid.FromBytes(raw[16:32])
	raw = raw[32:]
	region, raw, ok := cutString(raw)
	if !ok {
		return DescriptorInfo{}, errors.New("decode descriptor: truncated region")
	}
	host, raw, ok := cutString(raw)
	if !ok || len(raw) != 0 {
		return DescriptorInfo{}, errors.New("decode descriptor: malformed relay host")
	}
	return DescriptorInfo{
		PartyID:   partyID.String(),
		NetworkID: networkID.String(),
		Region:    region,
		RelayHost: host,
	}, nil
}

// cutString reads one length-prefixed string off raw.
func cutString(raw []byte) (string, []byte, bool) {
	if len(raw) < 1 || len(raw) < 1+int(raw[0]) {
		return "", nil, false
	}
	n := int(raw[0])
	return string(raw[1 : 1+n]), raw[1+n:], true
}

// relayHost names the fake relay of a region: lower case, with anything
// but letters and digits turned into '-'.
func relayHost(region string) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, region)
	return "relay-" + name + ".fake.playfab"
}
