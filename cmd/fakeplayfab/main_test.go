package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lobbyd/lobbyd/partyalloc"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"

	"github.com/lobbyd/lobbyd/internal/testutil"
)

// waitFor bounds every wait on the server under test.
const waitFor = 10 * time.Second

// server is a run() under test.
type server struct {
	url         string
	fingerprint string // of the TLS certificate, if any
	stdout      *testutil.LineWriter
	stderr      *testutil.LineWriter
	stop        func() error // cancels run and returns its error
}

// start calls run with args and env, and waits until it prints the
// address it listens on.
func start(t *testing.T, args []string, env map[string]string) *server {
	t.Helper()
	s := &server{}
	cmd, url := testutil.StartCommand(t, "fakeplayfab listening on ", func(line string) {
		if fp, ok := strings.CutPrefix(line, "fakeplayfab TLS certificate SHA-256 fingerprint: "); ok {
			s.fingerprint = fp
		}
	}, func(ctx context.Context, stdout, stderr io.Writer) error {
		return run(ctx, args, func(k string) string { return env[k] }, stdout, stderr)
	})
	s.url, s.stdout, s.stderr, s.stop = url, cmd.Stdout, cmd.Stderr, cmd.Stop
	return s
}

// pinnedClient trusts exactly the certificate with the given fingerprint.
func pinnedClient(fp string) *http.Client {
	return &http.Client{
		Timeout: waitFor,
		Transport: &http.Transport{
			ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{
				// Verification is replaced by pinning, below.
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					if len(cs.PeerCertificates) == 0 || fingerprint(cs.PeerCertificates[0].Raw) != fp {
						return errors.New("certificate fingerprint mismatch")
					}
					return nil
				},
			},
		},
	}
}

func partyRequest(partyID string) partyalloc.PartyRequest {
	return partyalloc.PartyRequest{
		PartyID: partyID,
		NetworkConfiguration: partyalloc.NetworkConfiguration{
			MaxUsers: 2, MaxDevices: 2, MaxUsersPerDevice: 1, MaxDevicesPerUser: 1, MaxEndpointsPerDevice: 1,
		},
		PreferredRegions: []string{"NorthEurope"},
	}
}

// getJSON fetches a control route into v.
func getJSON(t *testing.T, client *http.Client, url string, v any) {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestRunServesPlayFab(t *testing.T) {
	const secret = "cmd-test-secret-3b9d"
	s := start(t, []string{"-addr", "127.0.0.1:0", "-title-id", "T1", "-secret-key", secret, "-mode", "new", "-latency", "1ms"}, nil)
	require.True(t, strings.HasPrefix(s.url, "http://127.0.0.1:"), s.url)
	require.NotEqual(t, "http://127.0.0.1:0", s.url, "the real port is printed")

	client := &partyalloc.PlayFabClient{BaseURL: s.url, TitleID: "T1", SecretKey: secret}
	partyID := uuid.NewString()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	party, err := client.RequestParty(ctx, partyRequest(partyID))
	require.NoError(t, err)
	assert.Equal(t, partyID, party.PartyID)
	info, err := fakeplayfab.DecodeDescriptor(party.SerializedNetworkDescriptor)
	require.NoError(t, err)
	assert.Equal(t, "NorthEurope", info.Region)

	var stats fakeplayfab.Stats
	getJSON(t, http.DefaultClient, s.url+"/_fake/stats", &stats)
	assert.Equal(t, 1, stats.GetEntityToken)
	assert.Equal(t, 1, stats.RequestPartyService)
	assert.Equal(t, map[string]int{partyID: 1}, stats.Successes)
	var faults fakeplayfab.Faults
	getJSON(t, http.DefaultClient, s.url+"/_fake/faults", &faults)
	assert.Equal(t, time.Millisecond, faults.Latency)

	require.NoError(t, s.stop(), "graceful shutdown")
	_, err = http.Get(s.url + "/_fake/stats")
	assert.Error(t, err, "no longer listening")
	assert.NotContains(t, s.stdout.String(), secret)
	assert.NotContains(t, s.stderr.String(), secret)
}

func TestRunSecretKeyFromEnvironment(t *testing.T) {
	s := start(t, []string{"-addr", "127.0.0.1:0", "-log-level", "debug"}, map[string]string{envSecretKey: "env-secret-91c2"})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	good := &partyalloc.PlayFabClient{BaseURL: s.url, TitleID: "FAKE", SecretKey: "env-secret-91c2"}
	_, err := good.RequestParty(ctx, partyRequest(uuid.NewString()))
	require.NoError(t, err)

	bad := &partyalloc.PlayFabClient{BaseURL: s.url, TitleID: "FAKE", SecretKey: "fake-secret"}
	_, err = bad.RequestParty(ctx, partyRequest(uuid.NewString()))
	var apiErr *partyalloc.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "NotAuthenticated", apiErr.Name)

	require.NoError(t, s.stop())
	assert.NotContains(t, s.stderr.String(), "env-secret-91c2", "debug logs hold no key")
}

func TestRunSelfSignedTLS(t *testing.T) {
	s := start(t, []string{"-addr", "127.0.0.1:0", "-tls-self-signed"}, nil)
	require.True(t, strings.HasPrefix(s.url, "https://127.0.0.1:"), s.url)
	require.Len(t, s.fingerprint, 32*3-1, "colon-separated SHA-256")

	pinned := pinnedClient(s.fingerprint)
	client := &partyalloc.PlayFabClient{BaseURL: s.url, TitleID: "FAKE", SecretKey: "fake-secret", HTTPClient: pinned}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := client.RequestParty(ctx, partyRequest(uuid.NewString()))
	require.NoError(t, err)

	wrong := &partyalloc.PlayFabClient{BaseURL: s.url, TitleID: "FAKE", SecretKey: "fake-secret",
		HTTPClient: pinnedClient(strings.Repeat("00:", 31) + "00")}
	shortCtx, shortCancel := context.WithCancel(ctx)
	defer shortCancel()
	wrong.Observer = cancelOnRetry{shortCancel}
	_, err = wrong.RequestParty(shortCtx, partyRequest(uuid.NewString()))
	assert.ErrorContains(t, err, "fingerprint mismatch")

	// Over HTTP/2 a dropped reply resets the stream instead of closing a
	// connection; the party is still created.
	resp, err := pinned.Post(s.url+"/_fake/faults", "application/json", strings.NewReader(`{"dropResponseRate":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	dropCtx, dropCancel := context.WithCancel(ctx)
	defer dropCancel()
	client.Observer = cancelOnRetry{dropCancel}
	partyID := uuid.NewString()
	_, err = client.RequestParty(dropCtx, partyRequest(partyID))
	require.ErrorIs(t, err, context.Canceled)
	var stats fakeplayfab.Stats
	getJSON(t, pinned, s.url+"/_fake/stats", &stats)
	assert.Equal(t, 1, stats.Successes[partyID])
	assert.Equal(t, 1, stats.Dropped)

	// An open HTTP/2 connection would hold graceful shutdown for a second.
	pinned.CloseIdleConnections()
	require.NoError(t, s.stop())
}

// cancelOnRetry ends a call at its first retry.
type cancelOnRetry struct{ cancel context.CancelFunc }

func (c cancelOnRetry) PlayFabCall(string, string, time.Duration) {}
func (c cancelOnRetry) PlayFabRetry(string)                       { c.cancel() }

func TestRunTLSFiles(t *testing.T) {
	cert, fp, err := selfSignedCertificate(time.Now())
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))

	s := start(t, []string{"-addr", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile}, nil)
	require.True(t, strings.HasPrefix(s.url, "https://"), s.url)
	pinned := pinnedClient(fp)
	var stats fakeplayfab.Stats
	getJSON(t, pinned, s.url+"/_fake/stats", &stats)
	pinned.CloseIdleConnections()
	require.NoError(t, s.stop())
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantFlag string
	}{
		{[]string{"-mode", "both"}, "-mode"},
		{[]string{"-error-rate", "1.5"}, "-error-rate"},
		{[]string{"-throttle-rate", "-0.1"}, "-throttle-rate"},
		{[]string{"-drop-rate", "NaN"}, "-drop-rate"},
		{[]string{"-error-rate", "0.6", "-throttle-rate", "0.6"}, "-throttle-rate"},
		{[]string{"-latency", "-1s"}, "-latency"},
		{[]string{"-latency", "soon"}, "-latency"},
		{[]string{"-jitter", "-5ms"}, "-jitter"},
		{[]string{"-retry-after", "-1s"}, "-retry-after"},
		{[]string{"-token-lifetime", "0s"}, "-token-lifetime"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-title-id", ""}, "-title-id"},
		{[]string{"-tls-cert", "cert.pem"}, "-tls-key"},
		{[]string{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-tls-self-signed"}, "-tls-self-signed"},
		{[]string{"-tls-cert", "/nonexistent/c.pem", "-tls-key", "/nonexistent/k.pem"}, "-tls-cert"},
		{[]string{"-addr", "127.0.0.1:notaport"}, "-addr"},
		{[]string{"-no-such-flag"}, "-no-such-flag"},
		{[]string{"serve"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantFlag)
			assert.NotContains(t, stdout.String(), "listening")
		})
	}
}

func TestRunHelpHidesSecret(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret-for-help" }, &stdout, &stderr)
	require.NoError(t, err)
	assert.Contains(t, stderr.String(), "-secret-key")
	assert.NotContains(t, stderr.String()+stdout.String(), "env-secret-for-help")
}

func TestFingerprintFormat(t *testing.T) {
	der := []byte("not really a certificate")
	sum := sha256.Sum256(der)
	want := strings.ToUpper(fmt.Sprintf("%x", sum[:1])) + ":"
	assert.True(t, strings.HasPrefix(fingerprint(der), want))
	assert.Len(t, strings.Split(fingerprint(der), ":"), 32)
}
