package envflag

import (
	"bytes"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type settings struct {
	Addr     string
	Deadline time.Duration
	Workers  int
	On       bool
	Verbose  bool
	Origins  []string
	Format   string
}

func (s *settings) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.Addr, "addr", ":8080", "listen address")
	s.Deadline = 30 * time.Second
	fs.Var(DurationIn(&s.Deadline, time.Second, time.Minute), "allocation-deadline", "deadline")
	s.Workers = 4
	fs.Var(Int(&s.Workers, 1, 10), "workers", "workers")
	fs.Var(Bool(&s.On), "dev-auth", "on")
	fs.BoolVar(&s.Verbose, "v", false, "verbose")
	fs.Var(List(&s.Origins), "allowed-origins", "origins")
	s.Format = "text"
	fs.Var(OneOf(&s.Format, "text", "json"), "log-format", "format")
}

func parse(t *testing.T, args []string, env map[string]string) (settings, error) {
	t.Helper()
	var s settings
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.flags(fs)
	return s, Parse(fs, "APP_", args, func(k string) string { return env[k] })
}

func TestFlagsOverEnvironmentOverDefaults(t *testing.T) {
	s, err := parse(t, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, settings{Addr: ":8080", Deadline: 30 * time.Second, Workers: 4, Format: "text"}, s)

	s, err = parse(t, []string{"-addr", ":9", "-v", "-dev-auth", "true"}, map[string]string{
		"APP_ADDR": ":1", "APP_ALLOCATION_DEADLINE": " 5s ", "APP_WORKERS": "", "APP_ALLOWED_ORIGINS": "a, ,b", "APP_V": "false",
	})
	require.NoError(t, err)
	assert.Equal(t, ":9", s.Addr, "the flag wins")
	assert.Equal(t, 5*time.Second, s.Deadline, "the environment, trimmed")
	assert.Equal(t, 4, s.Workers, "an empty variable is unset")
	assert.True(t, s.On, "-dev-auth takes its value as the next argument")
	assert.True(t, s.Verbose, "a standard bool flag stands alone")
	assert.Equal(t, []string{"a", "b"}, s.Origins)
}

func TestEveryBadValueIsNamed(t *testing.T) {
	_, err := parse(t, []string{"-workers", "11", "stray"}, map[string]string{
		"APP_ALLOCATION_DEADLINE": "2m", "APP_DEV_AUTH": "maybe", "APP_LOG_FORMAT": "xml",
	})
	require.Error(t, err)
	for _, want := range []string{
		`APP_WORKERS (-workers): "11" must be a whole number from 1 to 10`,
		`APP_ALLOCATION_DEADLINE (-allocation-deadline): "2m" is not a duration from 1s to 1m`,
		`APP_DEV_AUTH (-dev-auth): "maybe" is not a boolean`,
		`APP_LOG_FORMAT (-log-format): "xml" is not text or json`,
		`unexpected arguments ["stray"]`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestHelpNamesVariablesAndDefaults(t *testing.T) {
	var s settings
	var out bytes.Buffer
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&out)
	s.flags(fs)
	require.ErrorIs(t, Parse(fs, "APP_", []string{"-h"}, func(string) string { return "" }), flag.ErrHelp)
	for _, want := range []string{"[APP_ALLOCATION_DEADLINE] (default 30s)", "[APP_ADDR] (default :8080)", "[APP_LOG_FORMAT] (default text)"} {
		assert.Contains(t, out.String(), want)
	}
	assert.NotContains(t, out.String(), "panic")
}

func TestStandardFlagErrorsShowTheValue(t *testing.T) {
	var n int
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.IntVar(&n, "players", 1, "players")
	err := Parse(fs, "APP_", nil, func(k string) string { return map[string]string{"APP_PLAYERS": "many"}[k] })
	require.Error(t, err)
	assert.Contains(t, err.Error(), `APP_PLAYERS (-players): "many": parse error`)
}
