// Command fakeplayfab serves a fake of PlayFab's GetEntityToken and
// RequestPartyService APIs, for development, tests and load tests. It
// speaks PlayFab's wire contract, so lobbyd and unmodified PlayFab SDKs can
// be pointed at it, and injects latency, errors, throttling and lost replies
// on demand. See package partyalloc/fakeplayfab for the behaviour and the
// /_fake/ control routes.
//
// Usage:
//
//	fakeplayfab [-addr :8090] [-title-id FAKE] [-secret-key KEY] [-mode dedupe|new]
//	            [-latency 0s] [-jitter 0s] [-error-rate 0] [-throttle-rate 0]
//	            [-retry-after 1s] [-drop-rate 0] [-token-lifetime 24h]
//	            [-tls-cert FILE -tls-key FILE | -tls-self-signed] [-log-level info]
//
// Every flag may also be set by its environment variable, FAKEPLAYFAB_ and
// the flag's name (FAKEPLAYFAB_SECRET_KEY, FAKEPLAYFAB_ERROR_RATE); the flag
// wins. The secret key is never printed.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lobbyd/lobbyd/internal/envflag"
	"github.com/lobbyd/lobbyd/partyalloc/fakeplayfab"
)

// envPrefix prefixes every flag's environment variable.
const envPrefix = "FAKEPLAYFAB_"

// envSecretKey names the environment variable holding the secret key.
const envSecretKey = envPrefix + "SECRET_KEY"

// shutdownTimeout bounds how long in-flight calls may take to finish.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeplayfab:", err)
		os.Exit(1)
	}
}

// config is the command line, validated.
type config struct {
	addr          string
	fake          fakeplayfab.Config
	tlsCert       string
	tlsKey        string
	tlsSelfSigned bool
	logLevel      slog.Level
}

// run serves the fake until ctx is done, then shuts down gracefully. It
// prints the address it listens on to stdout, and logs to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	cfg.fake.Logger = logger

	var tlsConfig *tls.Config
	switch {
	case cfg.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	case cfg.tlsSelfSigned:
		cert, fingerprint, err := selfSignedCertificate(time.Now())
		if err != nil {
			return fmt.Errorf("-tls-self-signed: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		fmt.Fprintf(stdout, "fakeplayfab TLS certificate SHA-256 fingerprint: %s\n", fingerprint)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on -addr %s: %w", cfg.addr, err)
	}
	srv := &http.Server{
		Handler:           fakeplayfab.New(cfg.fake),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Calls held by injected latency end when the server stops.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "fakeplayfab listening on %s://%s\n", scheme, displayAddr(ln.Addr()))
	logger.Info("fakeplayfab started", "title_id", cfg.fake.TitleID, "mode", cfg.fake.Mode.String(),
		"faults", cfg.fake.Faults.String(), "token_lifetime", cfg.fake.TokenLifetime)

	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("fakeplayfab shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("shut down: %w", shutdownErr)
	}
	return nil
}

// parseFlags parses and checks the command line. Every error names the
// flag at fault.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("fakeplayfab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		mode     string
		level    string
		faults   fakeplayfab.Faults
		lifetime time.Duration
	)
	fs.StringVar(&cfg.addr, "addr", ":8090", "`address` to listen on; port 0 picks a free port")
	fs.StringVar(&cfg.fake.TitleID, "title-id", "FAKE", "PlayFab title `id` the fake serves")
	// No default is shown, so that usage never prints a key.
	fs.StringVar(&cfg.fake.SecretKey, "secret-key", "", "title secret `key` GetEntityToken accepts (default \"fake-secret\")")
	fs.StringVar(&mode, "mode", "dedupe", "dedupe: a repeated PartyId gets the same party; new: a new party on every call")
	fs.DurationVar(&faults.Latency, "latency", 0, "delay added to every RequestPartyService call")
	fs.DurationVar(&faults.Jitter, "jitter", 0, "uniform variation of -latency, plus or minus")
	fs.Float64Var(&faults.ErrorRate, "error-rate", 0, "share of calls answered 503/500, 0 to 1")
	fs.Float64Var(&faults.ThrottleRate, "throttle-rate", 0, "share of calls answered 429 with a retry-after, 0 to 1")
	fs.DurationVar(&faults.RetryAfter, "retry-after", time.Second, "wait that throttled replies ask for")
	fs.Float64Var(&faults.DropResponseRate, "drop-rate", 0, "share of calls whose party is created but whose reply is dropped, 0 to 1")
	fs.DurationVar(&lifetime, "token-lifetime", 24*time.Hour, "lifetime of issued entity tokens")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate `file` (needs -tls-key)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key `file` for -tls-cert")
	fs.BoolVar(&cfg.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a certificate for localhost made at start-up; its fingerprint is printed")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	if err := envflag.Parse(fs, envPrefix, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("parse flags: %w", err)
	}

	var err error
	if cfg.fake.Mode, err = fakeplayfab.ParseMode(mode); err != nil {
		return config{}, fmt.Errorf("-mode: %w", err)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("-log-level: unknown level %q", level)
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"-latency", faults.Latency}, {"-jitter", faults.Jitter}, {"-retry-after", faults.RetryAfter}} {
		if d.value < 0 {
			return config{}, fmt.Errorf("%s must not be negative, got %v", d.flag, d.value)
		}
	}
	if lifetime <= 0 {
		return config{}, fmt.Errorf("-token-lifetime must be positive, got %v", lifetime)
	}
	for _, r := range []struct {
		flag  string
		value float64
	}{{"-error-rate", faults.ErrorRate}, {"-throttle-rate", faults.ThrottleRate}, {"-drop-rate", faults.DropResponseRate}} {
		if !(r.value >= 0 && r.value <= 1) {
			return config{}, fmt.Errorf("%s must be between 0 and 1, got %v", r.flag, r.value)
		}
	}
	if sum := faults.ErrorRate + faults.ThrottleRate + faults.DropResponseRate; sum > 1 {
		return config{}, fmt.Errorf("-error-rate, -throttle-rate and -drop-rate add up to %v, more than 1", sum)
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return config{}, errors.New("-tls-cert and -tls-key go together")
	}
	if cfg.tlsSelfSigned && cfg.tlsCert != "" {
		return config{}, errors.New("-tls-self-signed and -tls-cert exclude each other")
	}
	if cfg.fake.TitleID == "" {
		return config{}, errors.New("-title-id must not be empty")
	}

	cfg.fake.Faults = faults
	cfg.fake.TokenLifetime = lifetime
	return cfg, nil
}

// displayAddr is a listener's address as a client would dial it: an
// unspecified host (":8090") becomes the loopback address.
func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return tcp.String()
}

// selfSignedCertificate makes a certificate for localhost, 127.0.0.1 and ::1,
// valid for a year, and returns it with its SHA-256 fingerprint in the
// colon-separated hex that browsers and openssl show.
func selfSignedCertificate(now time.Time) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("generate serial number: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fakeplayfab", Organization: []string{"lobbyd fakeplayfab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, fingerprint(der), nil
}

// fingerprint is the SHA-256 of a DER certificate as "AB:CD:…".
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hexes, ":")
}
