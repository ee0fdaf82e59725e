package envflag

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// ReadFile reads a settings file in the environment-file form that docker
// (--env-file, compose's env_file) and systemd (EnvironmentFile=) read:
// one NAME=value per line, blank lines and lines starting with # skipped,
// a value optionally in single or double quotes (taken as written, no
// escapes). Every name must be one that known accepts, so a misspelt
// setting is an error, not ignored. Errors name the file and line, and the
// name only when it starts with prefix: never a value, or what may be one
// (the file may hold secrets).
func ReadFile(path, prefix string, known func(name string) bool) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read settings file: %w", err)
	}
	out := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(strings.TrimPrefix(name, "export "))
		switch {
		case !ok || !settingName.MatchString(name):
			// The line is not shown: it may be a secret.
			errs = append(errs, fmt.Errorf("%s:%d: not NAME=value", path, n))
			continue
		case !known(name) && strings.HasPrefix(name, prefix):
			errs = append(errs, fmt.Errorf("%s:%d: %s is not a setting", path, n, name))
			continue
		case !known(name):
			errs = append(errs, fmt.Errorf("%s:%d: not a setting (their names start with %s)", path, n, prefix))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: %s is set twice", path, n, name))
			continue
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out[name] = value
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read settings file: %w", err))
	}
	return out, errors.Join(errs...)
}

// settingName is what a setting's name looks like.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Layered is a getenv that answers from getenv, and for a variable that
// is unset or empty there, from file: the environment overrides the
// settings file, as flags override both.
func Layered(getenv func(string) string, file map[string]string) func(string) string {
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return file[name]
	}
}

// Known reports whether name is the environment variable of one of fs's
// flags (with prefix) or one of extra (settings read with getenv alone,
// such as secrets).
func Known(fs *flag.FlagSet, prefix string, extra ...string) func(string) bool {
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[EnvName(prefix, f.Name)] = true })
	for _, e := range extra {
		names[e] = true
	}
	return func(name string) bool { return names[name] }
}
