// Package envflag sets a flag.FlagSet's flags from the command line and,
// for flags not given there, from environment variables named after them:
// with prefix LOBBYD_, flag -allocation-deadline is LOBBYD_ALLOCATION_DEADLINE.
// Flags are bound to typed fields (flag.DurationVar, or the Values below),
// so a misspelt setting is a compile error, not a panic at start-up.
//
// Unlike flag.Parse, a bad value does not stop parsing: every bad value, from
// either source, is reported, each naming its variable and flag. Secrets
// are not flags (flags show in ps): read them with getenv or from a file.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// EnvName is the environment variable that sets flag name.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Name is how errors name a setting: "LOBBYD_ADDR (-addr)".
func Name(prefix, name string) string {
	return fmt.Sprintf("%s (-%s)", EnvName(prefix, name), name)
}

// Parse sets fs's flags from args, then every flag args did not set from its
// environment variable (when that is not empty). Values are trimmed of
// spaces. Each flag's usage gains its variable's name in brackets, so -h
// lists both. It returns flag.ErrHelp for -h, and otherwise every bad value
// and any stray argument, joined.
func Parse(fs *flag.FlagSet, prefix string, args []string, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage += " [" + EnvName(prefix, f.Name) + "]"
		f.Value = &collecting{Value: f.Value, name: Name(prefix, f.Name), errs: &errs}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args()))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(prefix, f.Name)); v != "" && !given[f.Name] {
			f.Value.Set(v) // collecting records the error
		}
	})
	return errors.Join(errs...)
}

// collecting wraps a flag's value so a bad value is recorded, named, and
// parsing goes on.
type collecting struct {
	flag.Value
	name string
	errs *[]error
}

func (c *collecting) String() string {
	if c.Value == nil { // the zero value flag.PrintDefaults makes
		return ""
	}
	return c.Value.String()
}

func (c *collecting) Set(s string) error {
	s = strings.TrimSpace(s)
	if err := c.Value.Set(s); err != nil {
		// The standard flag values say only "parse error": add the value
		// (a value that failed to parse; secrets are never flags). This
		// package's values say what was wrong themselves.
		if !ownValue(c.Value) {
			err = fmt.Errorf("%q: %w", s, err)
		}
		*c.errs = append(*c.errs, fmt.Errorf("%s: %w", c.name, err))
	}
	return nil
}

// ownValue reports whether v is one of this package's values, whose
// errors quote the value.
func ownValue(v flag.Value) bool {
	switch v.(type) {
	case Func, *boolValue:
		return true
	}
	return false
}

// IsBoolFlag lets "-dev-auth" stand for "-dev-auth=true" when the wrapped
// value is a boolean.
func (c *collecting) IsBoolFlag() bool {
	b, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Func is a flag.Value that parses with set and prints with get; for
// settings with their own syntax (rates, URLs, lists).
type Func struct {
	Get func() string
	Put func(string) error
}

func (f Func) String() string {
	if f.Get == nil {
		return ""
	}
	return f.Get()
}
func (f Func) Set(s string) error { return f.Put(s) }

// Bool is a boolean whose error says what to write. Unlike flag.Bool it
// takes its value as the next argument too ("-dev-auth true"), as lobbyd's
// flags always have.
func Bool(p *bool) flag.Value {
	return &boolValue{p}
}

type boolValue struct{ p *bool }

func (b *boolValue) String() string {
	if b.p == nil {
		return "false"
	}
	return strconv.FormatBool(*b.p)
}
func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not a boolean (use true or false)", s)
	}
	*b.p = v
	return nil
}

// Duration is a positive duration; with allowZero, "0" (off) too.
func Duration(p *time.Duration, allowZero bool) flag.Value {
	return Func{
		Get: func() string { return durationString(*p) },
		Put: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || (d == 0 && !allowZero) {
				if allowZero {
					return fmt.Errorf("%q is not 0 or a positive duration like 30s", s)
				}
				return fmt.Errorf("%q is not a positive duration like 30s", s)
			}
			*p = d
			return nil
		},
	}
}

// DurationIn is a duration from lo to hi.
func DurationIn(p *time.Duration, lo, hi time.Duration) flag.Value {
	return Func{
		Get: func() string { return durationString(*p) },
		Put: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < lo || d > hi {
				return fmt.Errorf("%q is not a duration from %s to %s", s, durationString(lo), durationString(hi))
			}
			*p = d
			return nil
		},
	}
}

// durationString prints whole units as written in the docs: 30s, 5m, 24h.
func durationString(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	for _, zeros := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, zeros) {
			s = strings.TrimSuffix(s, zeros) + zeros[:1]
		}
	}
	return s
}

// Int is a whole number from lo to hi.
func Int[T int | int64](p *T, lo, hi T) flag.Value {
	return Func{
		Get: func() string { return strconv.FormatInt(int64(*p), 10) },
		Put: func(s string) error {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < int64(lo) || n > int64(hi) {
				return fmt.Errorf("%q must be a whole number from %d to %d", s, lo, hi)
			}
			*p = T(n)
			return nil
		},
	}
}

// Float is a finite number.
func Float(p *float64) flag.Value {
	return Func{
		Get: func() string { return strconv.FormatFloat(*p, 'f', -1, 64) },
		Put: func(s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = f
			return nil
		},
	}
}

// OneOf is a string that must be one of options.
func OneOf(p *string, options ...string) flag.Value {
	return Func{
		Get: func() string { return *p },
		Put: func(s string) error {
			for _, o := range options {
				if s == o {
					*p = s
					return nil
				}
			}
			return fmt.Errorf("%q is not %s", s, orList(options))
		},
	}
}

func orList(options []string) string {
	if len(options) < 2 {
		return strings.Join(options, "")
	}
	return strings.Join(options[:len(options)-1], ", ") + " or " + options[len(options)-1]
}

// List is a comma-separated list; empty items are dropped.
func List(p *[]string) flag.Value {
	return Func{
		Get: func() string { return strings.Join(*p, ",") },
		Put: func(s string) error {
			*p = nil
			for _, item := range strings.Split(s, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*p = append(*p, item)
				}
			}
			return nil
		},
	}
}
