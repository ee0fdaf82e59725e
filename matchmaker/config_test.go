package matchmaker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExampleConfigLoads(t *testing.T) {
	queues, err := LoadConfig("../lobbyd.example.yaml")
	require.NoError(t, err)
	require.Len(t, queues, 3)
	duel := queues[0]
	assert.Equal(t, "duel", duel.Name)
	assert.Equal(t, 2, duel.MaxUsers)
	assert.Equal(t, 5*time.Minute, duel.TicketTimeout.D())
	assert.Equal(t, 400.0, duel.Skill.MaxWindow)
	assert.Equal(t, 120, duel.MaxLatencyMs)
	assert.Equal(t, 45*time.Second, queues[2].MaxWait.D())
}

func TestConfigDefaults(t *testing.T) {
	queues, err := ParseConfig([]byte(`
queues:
  - name: q
    maxUsers: 2
    maxDevices: 2
    maxDevicesPerUser: 1
    maxUsersPerDevice: 1
    regions: [WestUs]
`))
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, queues[0].TicketTimeout.D())
	assert.Equal(t, 90*time.Second, queues[0].MaxWait.D())
	assert.False(t, queues[0].Skill.Enabled())
}

func TestConfigErrorsNameFileQueueAndField(t *testing.T) {
	base := "queues:\n  - name: squad\n    maxUsers: 4\n    maxDevices: 4\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [WestUs]\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"typo in a field", base + "    maxWiat: 30s\n", []string{"maxWiat", "line 8"}},
		{"out of PlayFab's range", replace(base, "maxDevices: 4", "maxDevices: 200"), []string{"queues[0]", `"squad"`, "maxDevices 200", "between 1 and 128"}},
		{"bad duration", base + "    ticketTimeout: soon\n", []string{"ticketTimeout", "line 8", "not a duration"}},
		{"maxWait past the timeout", base + "    ticketTimeout: 1m\n    maxWait: 2m\n", []string{"maxWait", "ticketTimeout"}},
		{"skill without maxWindow", base + "    skill:\n      initialWindow: 100\n", []string{"skill", "maxWindow"}},
		{"skill maxWindow below initial", base + "    skill:\n      initialWindow: 100\n      maxWindow: 50\n", []string{"skill.maxWindow"}},
		{"unknown peer option", base + "    directPeerConnectivity: Sometimes\n", []string{"directPeerConnectivity"}},
		{"no regions", replace(base, "    regions: [WestUs]\n", ""), []string{"regions"}},
		{"duplicate names", base + replace(base, "queues:\n", ""), []string{"defined twice"}},
		{"empty file", "", []string{"empty"}},
		{"no queues", "queues: []\n", []string{"no queues"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lobbyd.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.yaml), 0o600))
			_, err := LoadConfig(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path, "the error names the file")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func replace(s, old, new string) string {
	out := ""
	for i := 0; i < len(s); {
		if len(s)-i >= len(old) && s[i:i+len(old)] == old {
			out += new
			i += len(old)
			continue
		}
		out += string(s[i])
		i++
	}
	return out
}
