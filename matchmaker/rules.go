package matchmaker

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// TeamRule splits every match of a queue into Count teams of exactly Size
// players (Count × Size = MaxUsers), balanced by skill: of the splits that
// keep every ticket on one team, the one whose teams' mean skills differ
// least. A match whose best split differs by more than the allowed
// imbalance (ImbalanceAt) is not formed yet. The zero value means no
// teams.
type TeamRule struct {
	// Count is the number of teams, at least 2.
	Count int `json:"count" yaml:"count"`
	// Size is the number of players of each team; a lobby larger than it
	// cannot queue.
	Size int `json:"size" yaml:"size"`
	// MaxImbalance is the largest allowed difference between the teams'
	// mean skills of a match whose oldest ticket just joined; 0 allows any.
	MaxImbalance float64 `json:"maxImbalance" yaml:"maxImbalance"`
	// WidenPerSecond is how much MaxImbalance grows per second of the
	// oldest ticket's wait.
	WidenPerSecond float64 `json:"widenPerSecond" yaml:"widenPerSecond"`
	// MaxImbalanceCap bounds that growth; 0 leaves it unbounded.
	MaxImbalanceCap float64 `json:"maxImbalanceCap" yaml:"maxImbalanceCap"`
}

// Enabled reports whether the queue forms teams.
func (r TeamRule) Enabled() bool { return r.Count > 0 }

// ImbalanceAt is the largest allowed difference between the teams' mean
// skills of a match whose oldest ticket has waited wait: MaxImbalance +
// WidenPerSecond × wait, at most MaxImbalanceCap when that is set, and
// +Inf when MaxImbalance is 0 (no limit).
func (r TeamRule) ImbalanceAt(wait time.Duration) float64 {
	if r.MaxImbalance == 0 {
		return math.Inf(1)
	}
	v := r.MaxImbalance + r.WidenPerSecond*wait.Seconds()
	if r.MaxImbalanceCap > 0 {
		v = min(v, r.MaxImbalanceCap)
	}
	return v
}

// Source says where a ticket's skill or attribute value comes from.
type Source string

// Sources of skill and attribute values.
const (
	// SourceClient: queue.join sends it (skill: the default).
	SourceClient Source = "client"
	// SourceToken: the player's token carries it (JWT claims "skill" and
	// "attrs"); a client may not send it.
	SourceToken Source = "token"
)

// Rule is how an attribute binds the tickets of a match.
type Rule string

// Attribute rules.
const (
	// RuleEqual: every ticket has the same value (type string).
	RuleEqual Rule = "equal"
	// RuleIntersect: the tickets' sets share at least one value (type
	// strings).
	RuleIntersect Rule = "intersect"
	// RuleDistance: the highest value minus the lowest is at most
	// MaxDistance (type number).
	RuleDistance Rule = "distance"
	// RuleAny: the attribute no longer binds (only in a relax step).
	RuleAny Rule = "any"
)

// ruleOfType is the one rule each attribute type takes.
var ruleOfType = map[domain.AttrType]Rule{
	domain.AttrString:  RuleEqual,
	domain.AttrStrings: RuleIntersect,
	domain.AttrNumber:  RuleDistance,
}

// Attribute is one matchmaking attribute of a queue: its type, the rule
// that binds the tickets of a match, where its value comes from, and how
// the rule relaxes as the match's oldest ticket waits.
type Attribute struct {
	// Name is the attribute's key in queue.join "attributes" and in the
	// token's "attrs" claim: 1 to 64 letters, digits, '_', '.' or '-'; not
	// skill, region, latency or teams (names of the other rules).
	Name string `json:"name" yaml:"name"`
	// Type is string, strings or number.
	Type domain.AttrType `json:"type" yaml:"type"`
	// Rule is equal (string), intersect (strings) or distance (number);
	// empty takes the type's rule.
	Rule Rule `json:"rule" yaml:"rule"`
	// Source is client (default) or token.
	Source Source `json:"source" yaml:"source"`
	// Required refuses a ticket without a value (a client attribute: the
	// request is a bad_request; a token attribute: forbidden). A ticket
	// without a value of an attribute that is not required matches any
	// value.
	Required bool `json:"required,omitempty" yaml:"required"`
	// Values, if set, lists the only values allowed (string, strings).
	Values []string `json:"values,omitempty" yaml:"values"`
	// MaxDistance is the largest allowed highest-minus-lowest value of a
	// match (distance rule); 0 asks for equal numbers.
	MaxDistance float64 `json:"maxDistance,omitempty" yaml:"maxDistance"`
	// Relax lists steps by the oldest ticket's wait, strictly increasing in
	// After; the last step whose After has passed applies.
	Relax []RelaxStep `json:"relax,omitempty" yaml:"relax"`
}

// RelaxStep loosens an attribute's rule once a match's oldest ticket has
// waited After: Rule any stops the rule binding; MaxDistance (distance
// rule) widens the distance. Exactly one of them is set.
type RelaxStep struct {
	After       Duration `json:"after" yaml:"after"`
	Rule        Rule     `json:"rule,omitempty" yaml:"rule"`
	MaxDistance float64  `json:"maxDistance,omitempty" yaml:"maxDistance"`
}

// LatencyStep raises a queue's maxLatencyMs once a match's oldest ticket
// has waited After.
type LatencyStep struct {
	After        Duration `json:"after" yaml:"after"`
	MaxLatencyMs int      `json:"maxLatencyMs" yaml:"maxLatencyMs"`
}

// Caps on what a queue's attributes and a ticket's values may hold, so a
// ticket record stays small whatever a client or a token sends.
const (
	// MaxAttributes caps the attributes of a queue.
	MaxAttributes = 16
	// MaxAttrValues caps the values of a strings attribute of a ticket,
	// and of an allow-list.
	MaxAttrValues = 32
	// MaxAttrValueBytes caps one string value.
	MaxAttrValueBytes = 64
	// maxRelaxSteps caps the relax steps of one rule.
	maxRelaxSteps = 16
)

// reservedRules are the names of the rules that are not attributes, as
// queue.why and quality.relaxed name them.
var reservedRules = []string{"skill", "region", "latency", "teams"}

// effectiveRule is the attribute's rule, its type's when not written.
func (a Attribute) effectiveRule() Rule {
	if a.Rule == "" {
		return ruleOfType[a.Type]
	}
	return a.Rule
}

// effectiveSource is the attribute's source, client when not written.
func (a Attribute) effectiveSource() Source {
	if a.Source == "" {
		return SourceClient
	}
	return a.Source
}

// at returns how the attribute binds a match whose oldest ticket has
// waited wait: whether it binds at all, its distance for the distance
// rule, and the index of the relax step in force (-1: none).
func (a Attribute) at(wait time.Duration) (binds bool, maxDistance float64, step int) {
	binds, maxDistance = true, a.MaxDistance
	passed, _ := stepsAt(a.Relax, RelaxStep.after, wait)
	for _, s := range a.Relax[:passed] {
		if s.Rule == RuleAny {
			binds = false
		} else if s.MaxDistance > 0 {
			binds, maxDistance = true, s.MaxDistance
		}
	}
	return binds, maxDistance, passed - 1
}

// nextRelax is the time from wait until the attribute's next relax step
// applies, or 0 when none is left.
func (a Attribute) nextRelax(wait time.Duration) time.Duration {
	_, next := stepsAt(a.Relax, RelaxStep.after, wait)
	return next
}

// MaxLatencyAt is the queue's maxLatencyMs for a match whose oldest ticket
// has waited wait: the last latencyRelax step passed, else MaxLatencyMs (0:
// any latency).
func (q Queue) MaxLatencyAt(wait time.Duration) int {
	if passed, _ := stepsAt(q.LatencyRelax, LatencyStep.after, wait); passed > 0 {
		return q.LatencyRelax[passed-1].MaxLatencyMs
	}
	return q.MaxLatencyMs
}

// stepsAt is how many of steps (by increasing After) apply at wait, and
// the time until the next one does (0: none is left).
func stepsAt[S any](steps []S, after func(S) time.Duration, wait time.Duration) (passed int, next time.Duration) {
	for passed < len(steps) && after(steps[passed]) <= wait {
		passed++
	}
	if passed < len(steps) {
		next = after(steps[passed]) - wait
	}
	return passed, next
}

func (s RelaxStep) after() time.Duration   { return s.After.D() }
func (s LatencyStep) after() time.Duration { return s.After.D() }

// loosestLatency is the highest maxLatencyMs any wait reaches.
func (q Queue) loosestLatency() int {
	if n := len(q.LatencyRelax); n > 0 {
		return q.LatencyRelax[n-1].MaxLatencyMs
	}
	return q.MaxLatencyMs
}

// MaxLobbyMembers is the most players one ticket of the queue may bring:
// the team size with teams (a lobby is never split across teams), else
// MaxUsers.
func (q Queue) MaxLobbyMembers() int {
	if q.Teams.Enabled() {
		return q.Teams.Size
	}
	return q.MaxUsers
}

// attribute returns the queue's attribute of that name.
func (q Queue) attribute(name string) (Attribute, bool) {
	for _, a := range q.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// validateRules checks teams, skill.source, attributes and latencyRelax;
// check records each failure, naming the field.
func (q Queue) validateRules(check func(ok bool, format string, args ...any)) {
	finiteNonNeg := func(vs ...float64) bool {
		for _, v := range vs {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return false
			}
		}
		return true
	}
	if t := q.Teams; t != (TeamRule{}) {
		check(t.Count >= 2, "teams.count %d: must be at least 2", t.Count)
		check(t.Size >= 1, "teams.size %d: must be at least 1", t.Size)
		check(t.Count < 2 || t.Size < 1 || t.Count*t.Size == q.MaxUsers,
			"teams: count %d x size %d is %d, must equal maxUsers %d", t.Count, t.Size, t.Count*t.Size, q.MaxUsers)
		check(finiteNonNeg(t.MaxImbalance, t.WidenPerSecond, t.MaxImbalanceCap),
			"teams: maxImbalance, widenPerSecond and maxImbalanceCap must be finite numbers, not negative")
		check(t.MaxImbalanceCap == 0 || t.MaxImbalanceCap >= t.MaxImbalance,
			"teams.maxImbalanceCap %v: must be at least maxImbalance (%v)", t.MaxImbalanceCap, t.MaxImbalance)
		check(t.MaxImbalance > 0 || (t.WidenPerSecond == 0 && t.MaxImbalanceCap == 0),
			"teams: set maxImbalance to limit the imbalance (0 allows any, so widenPerSecond and maxImbalanceCap would do nothing)")
	}
	check(q.Skill.Source == "" || q.Skill.Source == SourceClient || q.Skill.Source == SourceToken,
		"skill.source %q: must be client or token", q.Skill.Source)

	check(len(q.Attributes) <= MaxAttributes, "attributes: %d, at most %d", len(q.Attributes), MaxAttributes)
	seen := map[string]bool{}
	for i, a := range q.Attributes {
		field := fmt.Sprintf("attributes[%d]", i)
		if domain.ValidName(a.Name) {
			field = fmt.Sprintf("attributes[%d] (%s)", i, a.Name)
		}
		check(domain.ValidName(a.Name), "%s.name %q: use 1 to 64 letters, digits, '_', '.' or '-'", field, a.Name)
		check(!slices.Contains(reservedRules, a.Name), "%s.name: %q names another rule (skill, region, latency, teams)", field, a.Name)
		check(!seen[a.Name], "%s.name: %q is defined twice", field, a.Name)
		seen[a.Name] = true
		want, known := ruleOfType[a.Type]
		check(known, "%s.type %q: must be string, strings or number", field, a.Type)
		check(!known || a.Rule == "" || a.Rule == want, "%s.rule %q: does not fit type %s (use %s)", field, a.Rule, a.Type, want)
		check(a.Source == "" || a.Source == SourceClient || a.Source == SourceToken, "%s.source %q: must be client or token", field, a.Source)
		check(len(a.Values) == 0 || a.Type != domain.AttrNumber, "%s.values: only for string and strings attributes", field)
		check(len(a.Values) <= MaxAttrValues, "%s.values: %d, at most %d", field, len(a.Values), MaxAttrValues)
		for _, v := range a.Values {
			check(v != "" && len(v) <= MaxAttrValueBytes, "%s.values: %q must be 1 to %d bytes", field, v, MaxAttrValueBytes)
		}
		check(a.MaxDistance == 0 || a.Type == domain.AttrNumber, "%s.maxDistance: only for number attributes", field)
		check(finiteNonNeg(a.MaxDistance), "%s.maxDistance %v: must be a finite number, not negative", field, a.MaxDistance)
		check(len(a.Relax) <= maxRelaxSteps, "%s.relax: %d steps, at most %d", field, len(a.Relax), maxRelaxSteps)
		prev, dist, anyDone := time.Duration(0), a.MaxDistance, false
		for j, s := range a.Relax {
			step := fmt.Sprintf("%s.relax[%d]", field, j)
			check(s.After.D() > prev, "%s.after %v: steps must be strictly increasing in after, each after 0s", step, s.After.D())
			check(s.After <= q.TicketTimeout, "%s.after %v: past ticketTimeout (%v), it would never apply", step, s.After.D(), q.TicketTimeout.D())
			prev = s.After.D()
			check(!anyDone, "%s: comes after rule: any, which already lifted the rule", step)
			switch {
			case s.Rule != "" && s.MaxDistance != 0:
				check(false, "%s: set rule: any or maxDistance, not both", step)
			case s.Rule != "":
				check(s.Rule == RuleAny, "%s.rule %q: a step can only set any", step, s.Rule)
				anyDone = true
			case s.MaxDistance != 0:
				check(a.Type == domain.AttrNumber, "%s.maxDistance: only for number attributes (use rule: any)", step)
				check(finiteNonNeg(s.MaxDistance) && s.MaxDistance > dist,
					"%s.maxDistance %v: must be a finite number above the one before (%v)", step, s.MaxDistance, dist)
				dist = s.MaxDistance
			default:
				check(false, "%s: set rule: any or maxDistance", step)
			}
		}
	}

	check(len(q.LatencyRelax) == 0 || q.MaxLatencyMs > 0, "latencyRelax: needs maxLatencyMs (0 accepts any latency already)")
	check(len(q.LatencyRelax) <= maxRelaxSteps, "latencyRelax: %d steps, at most %d", len(q.LatencyRelax), maxRelaxSteps)
	prev, ms := time.Duration(0), q.MaxLatencyMs
	for j, s := range q.LatencyRelax {
		step := fmt.Sprintf("latencyRelax[%d]", j)
		check(s.After.D() > prev, "%s.after %v: steps must be strictly increasing in after, each after 0s", step, s.After.D())
		check(s.After <= q.TicketTimeout, "%s.after %v: past ticketTimeout (%v), it would never apply", step, s.After.D(), q.TicketTimeout.D())
		check(s.MaxLatencyMs > ms, "%s.maxLatencyMs %d: must be above the one before (%d)", step, s.MaxLatencyMs, ms)
		prev, ms = s.After.D(), s.MaxLatencyMs
	}
}
