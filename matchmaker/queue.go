// Package matchmaker holds queues and tickets and forms matches of exactly a
// queue's MaxUsers players. Formation runs on the node holding the queue's
// lease; every match is committed by one atomic script in store, so a ticket
// is never in two matches even if two nodes believe they lead.
package matchmaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"go.yaml.in/yaml/v3"
)

// Queue configures one matchmaking queue. Zero fields get the defaults
// documented on them (see ApplyDefaults). The queue's PlayFab network
// settings are the allocator's (partyalloc.Network), not the matchmaker's.
type Queue struct {
	// Name identifies the queue in queue.join and in Redis keys.
	Name string `json:"name" yaml:"name"`
	// MaxUsers is the exact number of players in every match, and PlayFab's
	// NetworkConfiguration.MaxUsers.
	MaxUsers int `json:"maxUsers" yaml:"maxUsers"`
	// Regions lists the PlayFab regions this queue may use, most preferred
	// first. A ticket's own regions must be among them.
	Regions []string `json:"regions" yaml:"regions"`

	// TicketTimeout is how long a ticket may wait unmatched before it
	// expires (its players get queue.state expired). Default 10m.
	TicketTimeout Duration `json:"ticketTimeout" yaml:"ticketTimeout"`
	// MaxWait is how long a ticket waits before the skill rule stops
	// binding it: it is then matched with the oldest compatible tickets
	// (same region) whatever their skill. Default 90s.
	MaxWait Duration `json:"maxWait" yaml:"maxWait"`
	// Skill bounds the skill spread of a match; zero disables the rule.
	Skill SkillRule `json:"skill" yaml:"skill"`
	// MaxLatencyMs: a region is acceptable to a ticket that reports
	// latencies only if its latency is at most this. 0 accepts any latency.
	MaxLatencyMs int `json:"maxLatencyMs,omitempty" yaml:"maxLatencyMs"`
	// LatencyRelax raises MaxLatencyMs step by step as a match's oldest
	// ticket waits (see MaxLatencyAt).
	LatencyRelax []LatencyStep `json:"latencyRelax,omitempty" yaml:"latencyRelax"`
	// Teams splits every match into balanced teams; the zero value forms
	// one undivided group, as before teams.
	Teams TeamRule `json:"teams,omitzero" yaml:"teams"`
	// Attributes are the queue's matchmaking attributes, checked in this
	// order.
	Attributes []Attribute `json:"attributes,omitempty" yaml:"attributes"`
	// Shards splits the queue into this many shards, each with its own
	// slot, lease, leader and allocation stream, so one queue can use more
	// than one Redis core (see Shard). 0 or 1: one.
	Shards int `json:"shards,omitempty" yaml:"shards"`
	// ShardSkillBand is the width of the skill bands tickets are sharded
	// by (see Shard); default the skill rule's maxWindow.
	ShardSkillBand float64 `json:"shardSkillBand,omitempty" yaml:"shardSkillBand"`
}

// SkillRule bounds a match's skill spread (highest minus lowest ticket
// skill) by a window that widens with the oldest member's wait:
// min(InitialWindow + WidenPerSecond × wait, MaxWindow).
type SkillRule struct {
	InitialWindow  float64 `json:"initialWindow" yaml:"initialWindow"`
	WidenPerSecond float64 `json:"widenPerSecond" yaml:"widenPerSecond"`
	MaxWindow      float64 `json:"maxWindow" yaml:"maxWindow"`
	// Source is where a ticket's skill comes from: client (empty, the
	// default: queue.join "skill", or a lobby's members' own skills) or
	// token (the JWT claim "skill"; a client-sent skill is forbidden).
	Source Source `json:"source,omitempty" yaml:"source"`
}

// Enabled reports whether the rule constrains anything.
func (r SkillRule) Enabled() bool { return r.MaxWindow > 0 }

// Window is the allowed skill spread for a match whose oldest member has
// waited wait.
func (r SkillRule) Window(wait time.Duration) float64 {
	if !r.Enabled() {
		return math.Inf(1)
	}
	return min(r.InitialWindow+r.WidenPerSecond*wait.Seconds(), r.MaxWindow)
}

// ApplyDefaults fills zero settings with their documented defaults.
func (q *Queue) ApplyDefaults() {
	if q.TicketTimeout == 0 {
		q.TicketTimeout = Duration(10 * time.Minute)
	}
	if q.MaxWait == 0 {
		q.MaxWait = Duration(90 * time.Second)
	}
	if len(q.Attributes) > 0 {
		q.Attributes = slices.Clone(q.Attributes) // not the caller's array
		for i := range q.Attributes {
			q.Attributes[i].Rule = q.Attributes[i].effectiveRule()
			q.Attributes[i].Source = q.Attributes[i].effectiveSource()
		}
	}
}

// DefaultQueues is the configuration used when none is given: one queue,
// "default", of four players.
func DefaultQueues() []Queue {
	q := Queue{
		Name:     "default",
		MaxUsers: 4,
		Regions:  []string{"EastUs", "WestUs", "NorthEurope", "WestEurope"},
	}
	q.ApplyDefaults()
	return []Queue{q}
}

// Duration is a time.Duration written as "90s" or "5m" in configuration
// and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalYAML reads a duration string such as "90s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return &DurationError{Line: n.Line, Value: n.Value}
	}
	*d = Duration(v)
	return nil
}

// DurationError is a bad duration in a YAML file. The decoder knows the
// value's line but not its key: the file's reader sets Field from the line.
type DurationError struct {
	Line  int
	Value string
	Field string // "ticketTimeout", when known
}

func (e *DurationError) Error() string {
	field := ""
	if e.Field != "" {
		field = e.Field + ": "
	}
	return fmt.Sprintf("line %d: %s%q is not a duration like 90s or 5m", e.Line, field, e.Value)
}

// Validate checks the queue against lobbyd's rules, so a bad configuration
// stops start-up. Each error names the field.
func (q Queue) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(domain.ValidName(q.Name), "name %q: use 1 to 64 letters, digits, '_', '.' or '-'", q.Name)
	check(q.MaxUsers >= 2 && q.MaxUsers <= 128*8, "maxUsers %d: must be between 2 and 1024", q.MaxUsers)
	check(len(q.Regions) > 0, "regions: at least one region is required (PlayFab needs PreferredRegions)")
	for _, r := range q.Regions {
		check(r != "" && len(r) <= 64 && !strings.ContainsAny(r, " \t"), "regions: %q is not a region name like WestUs", r)
	}
	check(q.TicketTimeout > 0 && q.TicketTimeout.D() <= time.Hour,
		"ticketTimeout %v: must be positive and at most 1h (ticket records live 2h)", q.TicketTimeout.D())
	check(q.MaxWait >= 0 && q.MaxWait <= q.TicketTimeout, "maxWait %v: must be between 0 and ticketTimeout (%v)", q.MaxWait.D(), q.TicketTimeout.D())
	check(q.Skill.InitialWindow >= 0 && q.Skill.WidenPerSecond >= 0 && q.Skill.MaxWindow >= 0,
		"skill: initialWindow, widenPerSecond and maxWindow must not be negative")
	// YAML spells infinity .inf: GET /v1/queues could not encode it, and an
	// infinite widening makes the window at no wait NaN.
	check(!math.IsInf(q.Skill.InitialWindow, 0) && !math.IsInf(q.Skill.WidenPerSecond, 0) && !math.IsInf(q.Skill.MaxWindow, 0),
		"skill: initialWindow, widenPerSecond and maxWindow must be finite numbers")
	check(q.Skill.MaxWindow == 0 || q.Skill.MaxWindow >= q.Skill.InitialWindow,
		"skill.maxWindow %v: must be at least initialWindow (%v)", q.Skill.MaxWindow, q.Skill.InitialWindow)
	check(q.Skill.MaxWindow > 0 || (q.Skill.InitialWindow == 0 && q.Skill.WidenPerSecond == 0),
		"skill: set maxWindow to enable the skill rule")
	check(q.MaxLatencyMs >= 0, "maxLatencyMs %d: must not be negative", q.MaxLatencyMs)
	check(q.Shards >= 0 && q.Shards <= maxShards, "shards %d: must be between 1 and %d", q.Shards, maxShards)
	check(q.ShardSkillBand >= 0 && !math.IsInf(q.ShardSkillBand, 0), "shardSkillBand %v: must be a number, not negative", q.ShardSkillBand)
	q.validateRules(check)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("queue %q: %w", q.Name, err)
	}
	return nil
}

// ValidateQueues checks every queue and that names are unique.
func ValidateQueues(queues []Queue) error {
	if len(queues) == 0 {
		return errors.New("no queues configured")
	}
	seen := make(map[string]bool)
	var errs []error
	for _, q := range queues {
		if seen[q.Name] {
			errs = append(errs, fmt.Errorf("queue %q: defined twice", q.Name))
		}
		seen[q.Name] = true
		errs = append(errs, q.Validate())
	}
	return errors.Join(errs...)
}
