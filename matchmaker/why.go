package matchmaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// Why a ticket waits. The queue's leader summarises, at most once per
// summaryEvery and off its formation loop, the searching tickets its last
// pass left: per rule, how their values are spread (summary). Any node
// answers queue.why from the last summary: for the caller's ticket and each
// rule, how many of those tickets it is compatible with on that rule alone
// at its wait now, and when the rule's next relax step applies. It is an
// estimate: rules are counted one at a time (two rules may each leave
// enough tickets and together too few), the tickets are those of the last
// pass, and spreads past the summary's caps are approximated.

// Tuning of the summary.
const (
	// summaryEvery is how often the leader summarises its pass.
	summaryEvery = time.Second
	// summaryTTL is how long a summary lives: a queue whose leader stopped
	// writing answers queue.why with ErrNoSummary after it.
	summaryTTL = 10 * time.Second
	// summaryValues caps the distinct values (equal), sets (intersect) and
	// region sets a summary counts per rule; tickets past it are counted
	// as compatible with nobody.
	summaryValues = 512
	// sketchPoints caps the numbers a sketch keeps (skill, distance).
	sketchPoints = 256
)

// ErrNoSummary means queue.why cannot be answered now: the queue's leader
// has written no summary of its passes recently (none leads it, or it has
// just started). It is a kind of domain.ErrUnavailable: try again.
var ErrNoSummary = fmt.Errorf("no recent formation pass to answer from: %w", domain.ErrUnavailable)

// Why is the answer to queue.why.
type Why struct {
	// Ticket is the ticket's id.
	Ticket string `json:"ticket"`
	// Rules lists the queue's rules: its attributes in order, then
	// "skill" (if the queue has a skill rule) and "region".
	Rules []WhyRule `json:"rules"`
	// BlockedBy names the rule that leaves the ticket the fewest
	// compatible tickets, when that is fewer than it needs to fill a
	// match; "" when no rule alone blocks it.
	BlockedBy string `json:"blockedBy"`
}

// WhyRule is one rule's part of Why.
type WhyRule struct {
	// Rule is an attribute's name, "skill" or "region".
	Rule string `json:"rule"`
	// Compatible is how many of the queue's other searching tickets the
	// ticket is compatible with on this rule alone, at its wait now.
	Compatible int `json:"compatible"`
	// RelaxesInMs is the time until the rule's next relax step applies
	// (skill: until maxWait lifts it; region: the next latencyRelax step),
	// omitted when none is left.
	RelaxesInMs int64 `json:"relaxesInMs,omitempty"`
}

// Rule names of queue.why and the blocked-tickets gauge, besides
// attribute names.
const (
	ruleSkill  = "skill"
	ruleRegion = "region"
)

// queueSummary is what the leader writes: the searching tickets its last
// pass left (not held), by rule.
type queueSummary struct {
	At      int64  `json:"at"` // the pass, ms since the epoch
	Tickets int    `json:"tickets"`
	Players int    `json:"players"`
	Skill   sketch `json:"skill"`
	// Regions counts, per latency level (0: maxLatencyMs, then each
	// latencyRelax step), the tickets by their set of acceptable regions
	// (bit i: the queue's region i; regions past the 64th share bit 63).
	Regions []map[uint64]int `json:"regions"`
	// RegionsOther counts, per level, tickets past summaryValues sets.
	RegionsOther []int        `json:"regionsOther"`
	Attrs        []attrSketch `json:"attrs"`

	// Worked out by prepare, not stored: the queue's region bits and
	// latency levels, and each intersect attribute's sets, split.
	bits   map[string]uint64
	levels []int
	sets   [][]setCount
}

type setCount struct {
	values []string
	n      int
}

// prepare works out what why needs beyond the stored summary, once per
// summary: it is then only read, by any number of goroutines.
func (sum *queueSummary) prepare(q Queue) *queueSummary {
	sum.bits, sum.levels = regionBits(q), latencyLevels(q)
	sum.sets = make([][]setCount, len(sum.Attrs))
	for i, as := range sum.Attrs {
		if a, ok := q.attribute(as.Name); ok && a.effectiveRule() == RuleIntersect {
			for set, n := range as.Values {
				sum.sets[i] = append(sum.sets[i], setCount{values: strings.Split(set, setSep), n: n})
			}
		}
	}
	return sum
}

// attrSketch is how a pass's tickets spread over one attribute.
type attrSketch struct {
	Name    string `json:"name"`
	Missing int    `json:"missing"` // no value: compatible with any
	// Blank counts the values compatible with nobody while the rule binds:
	// a lobby mixed on an equal attribute, an empty set.
	Blank int `json:"blank"`
	// Values counts tickets per value (equal) or per set (intersect, its
	// values sorted and joined by setSep).
	Values map[string]int `json:"values,omitempty"`
	Other  int            `json:"other"` // past summaryValues
	Nums   sketch         `json:"nums"`  // distance
}

const setSep = "\x1f"

// sketch approximates a multiset of numbers: all of them, sorted, up to
// sketchPoints; past that, sketchPoints evenly spaced order statistics.
type sketch struct {
	N int       `json:"n"`
	Q []float64 `json:"q"`
}

func newSketch(values []float64) sketch {
	slices.Sort(values)
	if len(values) <= sketchPoints {
		return sketch{N: len(values), Q: values}
	}
	q := make([]float64, sketchPoints)
	for i := range q {
		q[i] = values[i*(len(values)-1)/(sketchPoints-1)]
	}
	return sketch{N: len(values), Q: q}
}

// count estimates how many numbers lie in [lo, hi].
func (s sketch) count(lo, hi float64) int {
	if s.N == 0 || lo > hi {
		return 0
	}
	a, _ := slices.BinarySearch(s.Q, lo)
	b := a + sort.Search(len(s.Q)-a, func(i int) bool { return s.Q[a+i] > hi })
	if len(s.Q) == s.N {
		return b - a
	}
	return int(math.Round(float64(b-a) / float64(len(s.Q)) * float64(s.N)))
}

// regionBits maps the queue's regions to bits.
func regionBits(q Queue) map[string]uint64 {
	bits := make(map[string]uint64, len(q.Regions))
	for i, r := range q.Regions {
		bits[r] |= 1 << min(i, 63)
	}
	return bits
}

// latencyLevels are the latency limits a summary counts regions at.
func latencyLevels(q Queue) []int {
	levels := []int{q.MaxLatencyMs}
	for _, s := range q.LatencyRelax {
		levels = append(levels, s.MaxLatencyMs)
	}
	return levels
}

// regionMasks returns t's acceptable regions at each latency level, as
// bits of regionBits, in dst (reused), without allocating: acceptable's
// rules, its order aside.
func regionMasks(q Queue, t domain.Ticket, bits map[string]uint64, levels []int, dst []uint64) []uint64 {
	dst = append(dst[:0], make([]uint64, len(levels))...)
	switch {
	case len(t.Regions) > 0:
		var m uint64
		for _, r := range t.Regions {
			m |= bits[r]
		}
		for l := range dst {
			dst[l] = m
		}
	case len(t.Latencies) > 0:
		for _, r := range q.Regions {
			ms, ok := t.Latencies[r]
			if !ok || ms < 0 {
				continue
			}
			for l, limit := range levels {
				if limit == 0 || ms <= limit {
					dst[l] |= bits[r]
				}
			}
		}
	default:
		for _, b := range bits {
			for l := range dst {
				dst[l] |= b
			}
		}
	}
	return dst
}

// summarize describes tickets (searching, not held) as at now.
func summarize(q Queue, tickets []domain.Ticket, now time.Time) *queueSummary {
	bits, levels := regionBits(q), latencyLevels(q)
	sum := &queueSummary{At: now.UnixMilli(), Regions: make([]map[uint64]int, len(levels)), RegionsOther: make([]int, len(levels)),
		Attrs: make([]attrSketch, len(q.Attributes))}
	for l := range levels {
		sum.Regions[l] = map[uint64]int{}
	}
	skills := make([]float64, 0, len(tickets))
	nums := make([][]float64, len(q.Attributes))
	for i, a := range q.Attributes {
		sum.Attrs[i] = attrSketch{Name: a.Name, Values: map[string]int{}}
	}
	var masks []uint64
	for _, t := range tickets {
		sum.Tickets++
		sum.Players += t.Size()
		skills = append(skills, t.Skill)
		masks = regionMasks(q, t, bits, levels, masks)
		for l, m := range masks {
			if _, ok := sum.Regions[l][m]; ok || len(sum.Regions[l]) < summaryValues {
				sum.Regions[l][m]++
			} else {
				sum.RegionsOther[l]++
			}
		}
		for i, a := range q.Attributes {
			as := &sum.Attrs[i]
			v, ok := t.Attributes[a.Name]
			if !ok || v.Type != a.Type {
				as.Missing++
				continue
			}
			key := ""
			switch a.effectiveRule() {
			case RuleEqual:
				if len(v.Mixed) > 0 {
					as.Blank++
					continue
				}
				key = v.Str
			case RuleIntersect:
				if len(v.Strs) == 0 {
					as.Blank++
					continue
				}
				key = strings.Join(v.Strs, setSep)
			case RuleDistance:
				nums[i] = append(nums[i], v.Num)
				continue
			}
			if _, ok := as.Values[key]; ok || len(as.Values) < summaryValues {
				as.Values[key]++
			} else {
				as.Other++
			}
		}
	}
	sum.Skill = newSketch(skills)
	for i := range q.Attributes {
		sum.Attrs[i].Nums = newSketch(nums[i])
	}
	return sum.prepare(q)
}

// why answers queue.why for t at now from the summary.
func (sum *queueSummary) why(q Queue, t domain.Ticket, now time.Time) Why {
	var masks []uint64
	return sum.whyInto(q, t, now, make([]WhyRule, 0, len(q.Attributes)+2), &masks)
}

// whyInto is why with its rules appended to rules[:0] and its region masks
// worked out in *masks, buffers a caller asking for many tickets reuses.
func (sum *queueSummary) whyInto(q Queue, t domain.Ticket, now time.Time, rules []WhyRule, masks *[]uint64) Why {
	wait := max(now.Sub(t.CreatedAt), 0)
	// The summary counts t itself when it was searching at the pass.
	self := 0
	if t.CreatedAt.UnixMilli() <= sum.At && !held(t, time.UnixMilli(sum.At)) {
		self = 1
	}
	others := max(sum.Tickets-self, 0)
	out := Why{Ticket: t.ID, Rules: rules[:0]}
	for _, a := range q.Attributes {
		r := WhyRule{Rule: a.Name, RelaxesInMs: a.nextRelax(wait).Milliseconds()}
		r.Compatible = others
		if binds, dist, _ := a.at(wait); binds {
			r.Compatible = sum.attrCompatible(a, t.Attributes[a.Name], dist, self)
		}
		out.Rules = append(out.Rules, r)
	}
	if q.Skill.Enabled() {
		r := WhyRule{Rule: ruleSkill, Compatible: others}
		if wait < q.MaxWait.D() {
			w := q.Skill.Window(wait)
			r.Compatible = max(sum.Skill.count(t.Skill-w, t.Skill+w)-self, 0)
			r.RelaxesInMs = (q.MaxWait.D() - wait).Milliseconds()
		}
		out.Rules = append(out.Rules, r)
	}
	r := WhyRule{Rule: ruleRegion}
	level, next := stepsAt(q.LatencyRelax, LatencyStep.after, wait)
	r.RelaxesInMs = next.Milliseconds()
	if level < len(sum.Regions) {
		*masks = regionMasks(q, t, sum.bits, sum.levels, *masks)
		mine := (*masks)[level]
		for m, n := range sum.Regions[level] {
			if m&mine != 0 {
				r.Compatible += n
			}
		}
		if mine != 0 {
			r.Compatible = max(r.Compatible-self, 0)
		}
	}
	out.Rules = append(out.Rules, r)

	need := q.MaxUsers - t.Size()
	if need > 0 {
		perTicket := 1.0
		if sum.Tickets > 0 {
			perTicket = float64(sum.Players) / float64(sum.Tickets)
		}
		needTickets := int(math.Ceil(float64(need) / perTicket))
		fewest := needTickets
		for _, r := range out.Rules {
			if r.Compatible < fewest {
				out.BlockedBy, fewest = r.Rule, r.Compatible
			}
		}
	}
	return out
}

// attrCompatible counts the summary's tickets compatible with v on a
// binding attribute (distance: within dist), less t itself (self) when it
// is compatible with itself.
func (sum *queueSummary) attrCompatible(a Attribute, v domain.AttrValue, dist float64, self int) int {
	i := slices.IndexFunc(sum.Attrs, func(s attrSketch) bool { return s.Name == a.Name })
	if i < 0 {
		return max(sum.Tickets-self, 0) // the leader does not know it yet: no estimate
	}
	as := sum.Attrs[i]
	has := v.Type == a.Type
	n := 0
	switch rule := a.effectiveRule(); {
	case !has && rule == RuleDistance:
		n = sum.Tickets
	case !has:
		n = sum.Tickets - as.Blank
	case rule == RuleEqual && len(v.Mixed) > 0, rule == RuleIntersect && len(v.Strs) == 0:
		return 0 // compatible with nobody, itself included
	case rule == RuleEqual:
		n = as.Missing + as.Values[v.Str]
	case rule == RuleIntersect:
		n = as.Missing
		for _, set := range sum.sets[i] {
			if shareAny(set.values, v.Strs) {
				n += set.n
			}
		}
	case rule == RuleDistance:
		n = as.Missing + as.Nums.count(v.Num-dist, v.Num+dist)
	}
	return max(n-self, 0)
}

// summaryJob is a pass's leftover tickets for the summarizer.
type summaryJob struct {
	queue   Queue // as configured at the pass
	tickets []domain.Ticket
	now     time.Time
}

// summaryDue returns the queue's searching tickets for a summary, copied,
// when the last summary is summaryEvery old; the formation loop calls it
// after a pass and hands the job to the queue's summarizer.
func (s *Service) summaryDue(q Queue, now time.Time) (summaryJob, bool) {
	p := s.poolOf(q.Name)
	if p.lastSync.IsZero() || now.Sub(p.lastSummary) < summaryEvery {
		return summaryJob{}, false
	}
	p.lastSummary = now
	return summaryJob{queue: q, tickets: available(p.tickets(), now), now: now}, true
}

// writeSummary summarises a pass's leftover tickets, stores the summary
// for every node, and sets the gauge of tickets waiting by the rule that
// blocks them. It runs on the queue's summarizer, off the formation loop.
func (s *Service) writeSummary(ctx context.Context, q Queue, job summaryJob) {
	sum := summarize(q, job.tickets, job.now)
	b, err := json.Marshal(sum)
	if err == nil {
		err = s.Store.SetQueueSummary(ctx, q.Name, b, summaryTTL)
	}
	if err != nil && ctx.Err() == nil {
		s.Logger.Warn("store queue summary", "queue", q.Name, "err", err)
	}
	blocked := map[string]int{}
	var rules []WhyRule
	var masks []uint64
	for _, t := range job.tickets {
		w := sum.whyInto(q, t, job.now, rules, &masks)
		if rules = w.Rules; w.BlockedBy != "" {
			blocked[w.BlockedBy]++
		}
	}
	s.metrics.setBlocked(q, blocked)
}

// Why answers queue.why for the searching ticket t (as the store holds
// it): per rule of its queue, how many of the queue's searching tickets it
// is compatible with now, and when the rule next relaxes. It is an
// estimate from the queue leader's last summary (see above), read from
// Redis at most once per summaryEvery per node. It returns ErrUnknownQueue,
// domain.ErrNotFound for a ticket that is not searching, or ErrNoSummary.
func (s *Service) Why(ctx context.Context, t domain.Ticket) (Why, error) {
	q, ok := s.shard(t.Queue) // the ticket's shard: its summary is the shard's
	if !ok {
		return Why{}, ErrUnknownQueue
	}
	if t.Status != domain.TicketSearching {
		return Why{}, fmt.Errorf("no searching ticket: %w", domain.ErrNotFound)
	}
	sum, err := s.summary(ctx, q.Name)
	if err != nil {
		return Why{}, err
	}
	return sum.why(q, t, s.Now()), nil
}

// summaryReadTimeout bounds one read of a queue's summary, shared by the
// queue.why requests that wait for it.
const summaryReadTimeout = time.Second

// summary returns the queue's last summary, read from Redis at most once
// per summaryEvery (concurrent callers share one read).
func (s *Service) summary(ctx context.Context, queue string) (*queueSummary, error) {
	sum, err := s.summaries.get(ctx, queue, func(ctx context.Context) (*queueSummary, error) {
		b, err := s.Store.QueueSummary(ctx, queue)
		if errors.Is(err, domain.ErrNotFound) {
			return nil, ErrNoSummary
		}
		if err != nil {
			return nil, err
		}
		sum := &queueSummary{}
		if err := json.Unmarshal(b, sum); err != nil {
			return nil, fmt.Errorf("decode summary of %s: %w", queue, err)
		}
		q, _ := s.shard(queue)
		sum.prepare(q)
		return sum, nil
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}
