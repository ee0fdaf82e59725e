package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":8080", c.Addr)
	assert.Empty(t, c.RedisURL, "embedded Redis by default")
	assert.Empty(t, c.PlayFabTitleID, "fake PlayFab by default")
	assert.True(t, c.DevAuth)
	assert.EqualValues(t, 4096, c.MaxFrameBytes)
	assert.Equal(t, 30*time.Second, c.AllocationDeadline)
	assert.Equal(t, 5*time.Second, c.RequeueHold)
	assert.Equal(t, 30*time.Second, c.ReconnectGrace)
	assert.Equal(t, 10, c.CodeGuesses)
	assert.NotEmpty(t, c.NodeID)
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{
		"LOBBYD_DEV_AUTH": "true", "LOBBYD_ADDR": ":9000", "LOBBYD_MAX_FRAME_BYTES": "8192",
		"LOBBYD_PLAYFAB_TITLE_ID": "ABC12", "LOBBYD_PLAYFAB_SECRET_KEY": "k",
	})
	c, err := loadConfig([]string{"-addr", ":9100"}, env, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":9100", c.Addr, "a flag beats the environment")
	assert.EqualValues(t, 8192, c.MaxFrameBytes, "the environment beats the default")
	assert.Equal(t, "https://ABC12.playfabapi.com", c.PlayFabBaseURL, "base URL derived from the title id")
}

func TestConfigSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jwtFile := filepath.Join(dir, "jwt")
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(jwtFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	require.NoError(t, os.WriteFile(keyFile, []byte("title-secret\n"), 0o600))
	c, err := loadConfig(nil, envOf(map[string]string{
		"LOBBYD_JWT_SECRET_FILE": jwtFile, "LOBBYD_PLAYFAB_TITLE_ID": "T1", "LOBBYD_PLAYFAB_SECRET_KEY_FILE": keyFile,
	}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef0123456789abcdef", c.JWTSecret)
	assert.Equal(t, "title-secret", c.PlayFabSecretKey)
}

// The admin token may come from a file (LOBBYD_ADMIN_TOKEN_FILE or
// -admin-token-file), trimmed; a short one is refused, and so is setting
// both the token and its file. Errors name the setting, never the token.
func TestConfigAdminTokenFile(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef0123456789abcdef-admin"
	dir := t.TempDir()
	good, short := filepath.Join(dir, "token"), filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(good, []byte(token+"\n"), 0o600))
	require.NoError(t, os.WriteFile(short, []byte("SECRETVALUE\n"), 0o600))
	env := func(extra map[string]string) func(string) string {
		m := map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_ADMIN_ADDR": "127.0.0.1:0"}
		for k, v := range extra {
			m[k] = v
		}
		return envOf(m)
	}

	c, err := loadConfig(nil, env(map[string]string{"LOBBYD_ADMIN_TOKEN_FILE": good}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, token, c.AdminToken, "read from the file, without its newline")
	c, err = loadConfig([]string{"-admin-token-file", good}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, token, c.AdminToken, "the flag")

	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"short token in the file", map[string]string{"LOBBYD_ADMIN_TOKEN_FILE": short}, "at least 32 bytes"},
		{"token and token file", map[string]string{"LOBBYD_ADMIN_TOKEN": token, "LOBBYD_ADMIN_TOKEN_FILE": good}, "not both"},
		{"missing token file", map[string]string{"LOBBYD_ADMIN_TOKEN_FILE": filepath.Join(dir, "none")}, "read secret file"},
		{"empty token file", map[string]string{"LOBBYD_ADMIN_TOKEN_FILE": os.DevNull}, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(nil, env(tc.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "LOBBYD_ADMIN_TOKEN_FILE")
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "SECRETVALUE", "the token is never echoed")
			assert.NotContains(t, err.Error(), token, "the token is never echoed")
		})
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	const jwt = "a-jwt-secret-that-is-long-enough-32b"
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no jwt secret in production", map[string]string{}, nil, "LOBBYD_JWT_SECRET"},
		{"short jwt secret", map[string]string{"LOBBYD_JWT_SECRET": "short-SECRETVALUE"}, nil, "at least 32 bytes"},
		{"bad bool", map[string]string{"LOBBYD_DEV_AUTH": "sometimes"}, nil, "LOBBYD_DEV_AUTH"},
		{"bad duration", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_ALLOCATION_DEADLINE": "soon"}, nil, "LOBBYD_ALLOCATION_DEADLINE"},
		{"bad frame size", map[string]string{"LOBBYD_JWT_SECRET": jwt}, []string{"-max-frame-bytes", "10"}, "LOBBYD_MAX_FRAME_BYTES"},
		{"no code guesses", map[string]string{"LOBBYD_JWT_SECRET": jwt}, []string{"-code-guesses-per-minute", "0"}, "LOBBYD_CODE_GUESSES_PER_MINUTE"},
		{"title without key", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_PLAYFAB_TITLE_ID": "T"}, nil, "LOBBYD_PLAYFAB_SECRET_KEY"},
		{"key without title", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_PLAYFAB_SECRET_KEY": "SECRETVALUE"}, nil, "LOBBYD_PLAYFAB_TITLE_ID"},
		{"key and key file", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_PLAYFAB_TITLE_ID": "T",
			"LOBBYD_PLAYFAB_SECRET_KEY": "SECRETVALUE", "LOBBYD_PLAYFAB_SECRET_KEY_FILE": "/nonexistent"}, nil, "not both"},
		{"missing key file", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_PLAYFAB_TITLE_ID": "T",
			"LOBBYD_PLAYFAB_SECRET_KEY_FILE": "/nonexistent/key"}, nil, "LOBBYD_PLAYFAB_SECRET_KEY_FILE"},
		{"base url scheme", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_PLAYFAB_TITLE_ID": "T",
			"LOBBYD_PLAYFAB_SECRET_KEY": "SECRETVALUE", "LOBBYD_PLAYFAB_BASE_URL": "ftp://x"}, nil, "LOBBYD_PLAYFAB_BASE_URL"},
		{"bad log level", map[string]string{"LOBBYD_JWT_SECRET": jwt, "LOBBYD_LOG_LEVEL": "loud"}, nil, "LOBBYD_LOG_LEVEL"},
		{"redis url with password", map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_REDIS_URL": "redis://u:SECRETVALUE@h:1/x"}, nil, "LOBBYD_REDIS_URL"},
		{"stray argument", map[string]string{"LOBBYD_DEV_AUTH": "true"}, []string{"extra"}, "unexpected argument"},
		{"admin listener without a token", map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_ADMIN_ADDR": "127.0.0.1:0"}, nil, "no admin token"},
		{"short admin token", map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_ADMIN_ADDR": "127.0.0.1:0",
			"LOBBYD_ADMIN_TOKEN": "short-SECRETVALUE"}, nil, "at least 32 bytes"},
		{"admin on the public port", map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_ADMIN_ADDR": ":8080",
			"LOBBYD_ADMIN_TOKEN": testAdminToken, "LOBBYD_ADDR": "0.0.0.0:8080"}, nil, "LOBBYD_ADMIN_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.args, envOf(tc.env), io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "SECRETVALUE", "errors never echo a secret")
		})
	}
}

// An invalid configuration stops start-up through run, with the setting named.
func TestRunRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	err := run(context.Background(), nil, envOf(map[string]string{"LOBBYD_REDIS_URL": "memcached://x", "LOBBYD_DEV_AUTH": "true"}), &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LOBBYD_REDIS_URL")
	assert.Contains(t, err.Error(), "unsupported scheme")
	err = run(context.Background(), nil, envOf(map[string]string{"LOBBYD_DEV_AUTH": "maybe"}), &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LOBBYD_DEV_AUTH")
	assert.Empty(t, stdout.String(), "nothing was served")
}

// A queue file is loaded at start-up; a bad one stops it, naming the file,
// the queue and the field, before anything is served.
func TestRunWithQueueFile(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_CONFIG": "../../lobbyd.example.yaml"})
	resp, err := http.Get(srv.URL + "/v1/queues")
	require.NoError(t, err)
	defer resp.Body.Close()
	var qs struct {
		Queues []struct {
			Name          string `json:"name"`
			MaxUsers      int    `json:"maxUsers"`
			TicketTimeout string `json:"ticketTimeout"`
			Skill         struct {
				MaxWindow float64 `json:"maxWindow"`
			} `json:"skill"`
		} `json:"queues"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&qs))
	require.Len(t, qs.Queues, 5)
	assert.Equal(t, "duel", qs.Queues[0].Name)
	assert.Equal(t, 2, qs.Queues[0].MaxUsers)
	assert.Equal(t, "5m0s", qs.Queues[0].TicketTimeout)
	assert.Equal(t, 400.0, qs.Queues[0].Skill.MaxWindow)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("queues:\n  - name: duel\n    maxUsers: 2\n    maxDevices: 300\n    maxDevicesPerUser: 1\n    maxUsersPerDevice: 1\n    regions: [WestUs]\n"), 0o600))
	var stdout, stderr syncBuffer
	err = run(context.Background(), []string{"-config", bad}, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), &stdout, &stderr)
	require.Error(t, err)
	for _, want := range []string{"LOBBYD_CONFIG", bad, "queues[0]", `"duel"`, "maxDevices 300"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.Empty(t, stdout.String())
}

// With LOBBYD_DEBUG_ADDR, profiles are served there and only there.
func TestDebugAddrServesPprof(t *testing.T) {
	t.Parallel()
	srv := startServer(t, map[string]string{"LOBBYD_DEV_AUTH": "true", "LOBBYD_DEBUG_ADDR": "127.0.0.1:0"})
	// The debug listener is bound (and logged) before lobbyd prints that it
	// listens, so its port 0 is resolved in the log by now.
	m := regexp.MustCompile(`msg="serving pprof" addr=(\S+)`).FindStringSubmatch(srv.stderr.String())
	require.NotNil(t, m, "no pprof address in the log:\n%s", srv.stderr.String())
	debug := m[1]

	resp, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "goroutine profile")

	resp, err = http.Get(srv.URL + "/debug/pprof/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode, "never on the public port")
}

// Every flag and environment variable keeps its name (the list is the
// settings table of the previous release), and -h lists each with its
// variable and its default.
func TestConfigNamesUnchanged(t *testing.T) {
	old := map[string]string{
		"config": "", "addr": ":8080", "debug-addr": "", "redis-url": "", "node-id": "", "dev-auth": "false",
		"jwt-secret-file": "", "playfab-title-id": "", "playfab-secret-key-file": "", "playfab-base-url": "",
		"playfab-max-in-flight": "64", "allocation-deadline": "30s", "requeue-hold": "5s", "reconnect-grace": "30s",
		"code-guesses-per-minute": "10", "allowed-origins": "", "public-url": "", "max-frame-bytes": "4096",
		"request-rate": "20/s,40", "chat-rate": "1/s,5", "queue-join-rate": "30/m", "handshake-rate": "20/m",
		"abuse-penalty": "30s", "addr-handshake-rate": "50/s,1000", "max-conns-per-addr": "1000", "max-conns": "auto",
		"client-ip-header": "", "trusted-proxies": "", "skill-min": "-1000000", "skill-max": "1000000",
		"max-token-lifetime": "0", "shutdown-timeout": "15s", "log-level": "info", "log-format": "text",
	}
	var help syncBuffer
	_, err := loadConfig([]string{"-h"}, envOf(nil), &help)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.NotContains(t, help.String(), "panic")
	var c config
	fs := flag.NewFlagSet("lobbyd", flag.ContinueOnError)
	c.flags(fs)
	for name, def := range old {
		f := fs.Lookup(name)
		if !assert.NotNil(t, f, "flag -%s", name) {
			continue
		}
		assert.Equal(t, def, f.DefValue, "default of -%s", name)
		env := "LOBBYD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		assert.Contains(t, help.String(), "-"+name+" ", "-h lists -%s", name)
		assert.Contains(t, help.String(), "["+env+"]", "-h names %s", env)
	}
}

// Every bad value is reported at once, each naming its variable and flag,
// and a flag set right wins over a bad environment value.
func TestConfigReportsEveryBadValue(t *testing.T) {
	env := envOf(map[string]string{
		"LOBBYD_DEV_AUTH": "true", "LOBBYD_ALLOCATION_DEADLINE": "soon", "LOBBYD_CHAT_RATE": "fast",
		"LOBBYD_TRUSTED_PROXIES": "10.0.0.0/8, nowhere", "LOBBYD_ADDR": "bad but overridden",
	})
	_, err := loadConfig([]string{"-addr", ":9000", "-max-conns", "many"}, env, io.Discard)
	require.Error(t, err)
	for _, want := range []string{"LOBBYD_ALLOCATION_DEADLINE (-allocation-deadline)", "LOBBYD_CHAT_RATE (-chat-rate)",
		`LOBBYD_TRUSTED_PROXIES (-trusted-proxies): "nowhere"`, "LOBBYD_MAX_CONNS (-max-conns)"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "LOBBYD_ADDR")

	c, err := loadConfig([]string{"-max-conns", "7", "-trusted-proxies", "10.1.2.3"}, envOf(map[string]string{"LOBBYD_DEV_AUTH": "true"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 7, c.Limits.MaxConns)
	assert.Equal(t, "10.1.2.3/32", c.Limits.TrustedProxies[0].String())
}

// Every setting has a row in README.md's settings table.
func TestEverySettingIsInTheReadme(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var c config
	fs := flag.NewFlagSet("lobbyd", flag.ContinueOnError)
	c.flags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		env := "LOBBYD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		assert.Regexp(t, "\\| [^\n]*`-"+f.Name+"`[^\n]*\\| [^\n]*`"+env+"`", string(readme), "README row for -%s", f.Name)
	})
}

// LOBBYD_SETTINGS_FILE: settings from a file in the environment-file form,
// secrets included; the environment overrides it and flags override both;
// a name that is not a setting is refused, naming its line, and no value
// (the file holds secrets) appears in an error.
func TestConfigSettingsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "lobbyd.env")
	require.NoError(t, os.WriteFile(path, []byte(`# lobbyd's settings
LOBBYD_ADDR=:9000
LOBBYD_MAX_FRAME_BYTES=8192
export LOBBYD_REQUEST_RATE="5/s,10"
LOBBYD_JWT_SECRET='0123456789abcdef0123456789abcdef'

LOBBYD_RECONNECT_GRACE = 45s
`), 0o600))
	c, err := loadConfig([]string{"-addr", ":9100"}, envOf(map[string]string{
		"LOBBYD_SETTINGS_FILE": path, "LOBBYD_MAX_FRAME_BYTES": "16384",
	}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":9100", c.Addr, "a flag beats the file")
	assert.EqualValues(t, 16384, c.MaxFrameBytes, "the environment beats the file")
	assert.Equal(t, 5.0, c.Limits.Requests.PerSecond, "from the file")
	assert.Equal(t, 10.0, c.Limits.Requests.Burst)
	assert.Equal(t, 45*time.Second, c.ReconnectGrace)
	assert.Equal(t, "0123456789abcdef0123456789abcdef", string(c.JWTSecret), "secrets too")

	bad := filepath.Join(dir, "bad.env")
	require.NoError(t, os.WriteFile(bad, []byte("LOBBYD_ADDR=:9000\nLOBBYD_ADRR=:9001\nnot a setting line\nLOBBYD_JWT_SECRET=a-secret-value-that-must-not-show-up\nLOBBYD_JWT_SECRET=again-a-secret\n"+
		"LOBBYD_ADMIN_TOKEN: s3cretvalue=padding\nc2VjcmV0LWtleQ==\n"), 0o600))
	_, err = loadConfig(nil, envOf(map[string]string{"LOBBYD_SETTINGS_FILE": bad}), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LOBBYD_SETTINGS_FILE")
	assert.Contains(t, err.Error(), bad+":2: LOBBYD_ADRR is not a setting")
	assert.Contains(t, err.Error(), bad+":3: not NAME=value")
	assert.Contains(t, err.Error(), bad+":5: LOBBYD_JWT_SECRET is set twice")
	assert.NotContains(t, err.Error(), "secret-value")
	assert.Contains(t, err.Error(), bad+":6: not NAME=value")
	assert.Contains(t, err.Error(), bad+":7: not a setting (their names start with LOBBYD_)")
	assert.NotContains(t, err.Error(), "s3cretvalue", "a line that is not NAME=value is not shown")
	assert.NotContains(t, err.Error(), "c2VjcmV0")

	_, err = loadConfig(nil, envOf(map[string]string{"LOBBYD_SETTINGS_FILE": filepath.Join(dir, "missing.env")}), io.Discard)
	assert.ErrorContains(t, err, "LOBBYD_SETTINGS_FILE")
}
