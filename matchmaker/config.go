package matchmaker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the matchmaking part of lobbyd's configuration file.
type Config struct {
	Queues []Queue `yaml:"queues"`
}

// LoadConfig reads queues from a YAML file, fills defaults and validates
// them. Errors name the file, the queue and the field, and unknown fields
// are errors (a typo must not silently fall back to a default).
func LoadConfig(path string) ([]Queue, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read queue configuration: %w", err)
	}
	queues, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return queues, nil
}

// ParseConfig is LoadConfig on the file's contents.
func ParseConfig(raw []byte) ([]Queue, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: it needs a queues list")
		}
		var de *durationError
		if errors.As(err, &de) {
			lines := strings.Split(string(raw), "\n")
			if de.line >= 1 && de.line <= len(lines) {
				key, _, _ := strings.Cut(strings.TrimLeft(lines[de.line-1], " -"), ":")
				de.field = strings.TrimSpace(key) + ": "
			}
		}
		return nil, err
	}
	var errs []error
	for i := range cfg.Queues {
		cfg.Queues[i].ApplyDefaults()
	}
	for i, q := range cfg.Queues {
		if err := q.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("queues[%d]: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ValidateQueues(cfg.Queues); err != nil {
		return nil, err
	}
	return cfg.Queues, nil
}
