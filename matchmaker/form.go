package matchmaker

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/lobbyd/lobbyd/internal/domain"
)

// formMatches groups searching tickets, oldest first, into matches of
// exactly q.MaxUsers players. It is first fit over open groups in age order:
// each ticket joins the oldest open group it is compatible with, or opens a
// new one, so older tickets are always placed before newer ones. A ticket
// (a whole lobby) is never split. Every rule is taken at the wait of the
// group's oldest ticket (its first), relaxation included. A ticket is
// compatible with a group when:
//
//   - the group stays within MaxUsers;
//   - they share an acceptable region (see acceptable), latencies judged
//     by the queue's maxLatencyMs at that wait (MaxLatencyAt);
//   - the group's skill spread, with the ticket, fits the queue's skill
//     window at that wait, unless it has reached MaxWait: then skill no
//     longer binds the group;
//   - every attribute's rule in force at that wait holds (see attrState);
//   - with teams: the group's lobbies still fit the teams, and if the
//     ticket completes the group, its best split (see splitter) is within
//     the imbalance allowed at that wait.
//
// Cost: O(n·g) for n tickets and g open groups (g ≤ n, in practice small),
// plus, with teams, one split per completing candidate (see teams.go).
func formMatches(q Queue, tickets []domain.Ticket, now time.Time) []domain.Match {
	var matches []domain.Match
	f := newFormer(q, now, func(m domain.Match) { matches = append(matches, m) })
	f.knowSkills(tickets)
	for _, t := range tickets {
		f.add(t)
	}
	return matches
}

// former is formMatches one ticket at a time: each match is handed to emit
// as soon as it is complete, so that committing can start while grouping,
// or reading the tickets, goes on. Tickets must come oldest first.
type former struct {
	q    Queue
	now  time.Time
	emit func(domain.Match)
	open []*group

	maxMembers int       // the largest ticket the queue takes
	split      *splitter // with teams
	vals       []attrVal // the values of the ticket being placed, reused
	loosest    int       // the queue's loosest latency limit
	// skillLo and skillHi bound the skills of the tickets of the pass,
	// when known (else -Inf, +Inf): see dead.
	skillLo, skillHi float64
	sizes            []int     // a completing group's ticket sizes, for split
	skills           []float64 // and skills
}

func newFormer(q Queue, now time.Time, emit func(domain.Match)) former {
	f := former{q: q, now: now, emit: emit, maxMembers: q.MaxLobbyMembers(), loosest: q.loosestLatency(),
		skillLo: math.Inf(-1), skillHi: math.Inf(1)}
	if q.Teams.Enabled() {
		f.split = newSplitter(q.Teams.Count, q.Teams.Size)
	}
	if len(q.Attributes) > 0 {
		f.vals = make([]attrVal, len(q.Attributes))
	}
	return f
}

// knowSkills tells the former the skills of every ticket it will be given
// in this pass (see dead).
func (f *former) knowSkills(tickets []domain.Ticket) {
	if len(tickets) == 0 || f.split == nil { // only teams use it
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range tickets {
		lo, hi = math.Min(lo, tickets[i].Skill), math.Max(hi, tickets[i].Skill)
	}
	f.skillLo, f.skillHi = lo, hi
}

func (f *former) add(t domain.Ticket) {
	if t.Size() == 0 || t.Size() > f.maxMembers {
		return
	}
	c := cand{t: &t}
	f.prepare(&c)
	if len(c.regions) == 0 {
		return
	}
	for i, g := range f.open {
		if !f.accepts(g, &c) {
			continue
		}
		f.join(g, &c)
		switch {
		case g.size == f.q.MaxUsers:
			f.emit(f.match(g))
			f.open = slices.Delete(f.open, i, i+1)
		case f.split != nil && f.dead(g):
			f.open = slices.Delete(f.open, i, i+1)
		}
		return
	}
	g := f.newGroup(&c)
	switch {
	case g == nil: // it could not be matched even by itself yet
	case g.size == f.q.MaxUsers:
		f.emit(f.match(g))
	default:
		f.open = append(f.open, g)
	}
}

// cand is a ticket being placed, with what the rules look at worked out
// once.
type cand struct {
	t *domain.Ticket
	// regions are the ticket's acceptable regions at the queue's loosest
	// latency limit; with byLatency (they were chosen by latency) a group
	// takes only those within its own limit, a prefix of them.
	regions   []region
	byLatency bool
	vals      []attrVal // per queue attribute
}

// attrVal is a ticket's value of one attribute.
type attrVal struct {
	has   bool
	mixed bool // a lobby's members disagree (string)
	str   string
	strs  []string // sorted
	num   float64
}

// prepare works out c's regions and values.
func (f *former) prepare(c *cand) {
	t := c.t
	c.regions = acceptableAt(&f.q, t, f.loosest)
	c.vals = f.vals
	c.byLatency = len(t.Regions) == 0 && len(t.Latencies) > 0
	for i, a := range f.q.Attributes {
		v, ok := t.Attributes[a.Name]
		if !ok || v.Type != a.Type { // none, or stored under another queue file
			c.vals[i] = attrVal{}
			continue
		}
		av := attrVal{has: true, mixed: len(v.Mixed) > 0, str: v.Str, strs: v.Strs, num: v.Num}
		if !slices.IsSorted(av.strs) {
			av.strs = domain.SortedUnique(av.strs)
		}
		c.vals[i] = av
	}
}

func (f *former) accepts(g *group, c *cand) bool {
	if g.size+c.t.Size() > f.q.MaxUsers {
		return false
	}
	if max(g.maxSkill, c.t.Skill)-min(g.minSkill, c.t.Skill) > g.window { // never past +Inf
		return false
	}
	if f.split != nil && !f.teamsFit(g, c) {
		return false
	}
	for i := range g.attrs {
		if !g.attrs[i].accepts(&c.vals[i]) {
			return false
		}
	}
	if !g.shares(c) {
		return false
	}
	if f.split != nil && g.size+c.t.Size() == f.q.MaxUsers {
		return f.completeTeams(g, c)
	}
	return true
}

// dead reports whether a group one player short can no longer be
// completed in this pass: no skill its last player may have (within the
// group's skill window, and within the pass's skills when known) leaves a
// split within its allowed imbalance. Such a group is closed, rather
// than tried by every later ticket: nothing this pass could complete it,
// and its tickets wait for the next pass, when the limits will have
// widened.
func (f *former) dead(g *group) bool {
	if f.q.MaxUsers-g.size != 1 || math.IsInf(g.tg.imbalance, 1) {
		return false
	}
	lo, hi := max(g.maxSkill-g.window, f.skillLo), min(g.minSkill+g.window, f.skillHi)
	if math.IsInf(lo, -1) && math.IsInf(hi, 1) {
		return false
	}
	spans := f.spansOf(g, 1)
	i, _ := slices.BinarySearchFunc(spans, lo, func(s span, x float64) int { return cmp.Compare(s.hi, x) })
	return i == len(spans) || spans[i].lo > hi
}

// teamsFit is the cheap part of the team rule, cached per group and
// ticket size: a lobby must still fit the teams with the group's lobbies,
// and a ticket completing the group must have a skill that some split
// leaves within the group's allowed imbalance (see completionSpans). A
// queue whose teams are too large for the exact search has no spans: its
// completing tickets are tried by completeTeams alone.
func (f *former) teamsFit(g *group, c *cand) bool {
	size := c.t.Size()
	if size > 1 {
		if g.tg.packs == nil {
			g.tg.packs = make([]int8, f.q.Teams.Size+1)
		}
		if g.tg.packs[size] == 0 {
			g.tg.packs[size] = -1
			if _, ok := packTeams(append(slices.Clip(g.tg.lobbies), size), f.q.Teams.Count, f.q.Teams.Size); ok {
				g.tg.packs[size] = 1
			}
		}
		if g.tg.packs[size] < 0 {
			return false
		}
	}
	if g.size+size < f.q.MaxUsers {
		return true
	}
	return inSpans(f.spansOf(g, size), c.t.Skill)
}

// spansOf returns the skills a ticket of k players may have to complete
// the group (completionSpans), worked out once per group and k; all skills
// when the queue's teams are too large to tell.
func (f *former) spansOf(g *group, k int) []span {
	if g.tg.spans == nil {
		g.tg.spans = make([]*[]span, f.q.Teams.Size+1)
	}
	if g.tg.spans[k] == nil {
		f.groupSplitInput(g)
		spans, exact := f.split.completionSpans(f.sizes, f.skills, k, g.tg.imbalance)
		if !exact {
			spans = []span{{math.Inf(-1), math.Inf(1)}}
		}
		g.tg.spans[k] = &spans
	}
	return *g.tg.spans[k]
}

// completeTeams splits the group completed by c into its teams, and
// reports whether the best split is within the group's allowed imbalance;
// that split is then kept for the match.
func (f *former) completeTeams(g *group, c *cand) bool {
	f.groupSplitInput(g)
	f.sizes, f.skills = append(f.sizes, c.t.Size()), append(f.skills, c.t.Skill)
	teams, imbalance, ok := f.split.bestSplit(f.sizes, f.skills)
	if !ok || imbalance > g.tg.imbalance {
		return false
	}
	g.tg.teams, g.tg.teamImbalance = append(g.tg.teams[:0], teams...), imbalance
	return true
}

// groupSplitInput puts the sizes and skills of the group's tickets in
// f.sizes and f.skills.
func (f *former) groupSplitInput(g *group) {
	f.sizes, f.skills = f.sizes[:0], f.skills[:0]
	for _, t := range g.tickets {
		f.sizes, f.skills = append(f.sizes, t.Size()), append(f.skills, t.Skill)
	}
}

// region is one region acceptable to a ticket: its latency (-1 unknown)
// and its rank in the ticket's order of preference.
type region struct {
	name    string
	latency int
	rank    int
}

// acceptable lists the regions of q a ticket accepts at the queue's
// loosest latency limit (its last latencyRelax step, else maxLatencyMs),
// most preferred first: see acceptableAt.
func acceptable(q Queue, t domain.Ticket) []region { return acceptableAt(&q, &t, q.loosestLatency()) }

// acceptableAt lists the regions of q a ticket accepts with the latency
// limit maxLatencyMs (0: any), most preferred first: its own regions (in
// its order) if it gave any; else the regions it measured within the limit
// (by latency, so that a lower limit keeps a prefix of them, ranks
// unchanged); else all of the queue's regions (in the queue's order).
func acceptableAt(q *Queue, t *domain.Ticket, maxLatencyMs int) []region {
	out := make([]region, 0, len(q.Regions))
	switch {
	case len(t.Regions) > 0:
		for _, r := range t.Regions {
			if slices.Contains(q.Regions, r) && !slices.ContainsFunc(out, func(x region) bool { return x.name == r }) {
				out = append(out, region{name: r, latency: latencyOf(t, r), rank: len(out)})
			}
		}
	case len(t.Latencies) > 0:
		for _, r := range q.Regions {
			if ms, ok := t.Latencies[r]; ok && ms >= 0 && (maxLatencyMs == 0 || ms <= maxLatencyMs) {
				out = append(out, region{name: r, latency: ms})
			}
		}
		slices.SortStableFunc(out, func(a, b region) int { return cmp.Compare(a.latency, b.latency) })
		for i := range out {
			out[i].rank = i
		}
	default:
		for i, r := range q.Regions {
			out = append(out, region{name: r, latency: -1, rank: i})
		}
	}
	return out
}

func latencyOf(t *domain.Ticket, r string) int {
	if ms, ok := t.Latencies[r]; ok {
		return ms
	}
	return -1
}

// group is an open match being filled. The limits of every rule are taken
// once, at the wait of its first (oldest) ticket.
type group struct {
	tickets            []domain.Ticket
	size               int
	oldest             time.Time
	minSkill, maxSkill float64
	// common holds the regions every ticket accepts, in the seed's order
	// (for stable output), with the worst known latency among the tickets
	// and the sum of their preference ranks. A queue has a handful of
	// regions, so a slice beats a map.
	common []regionScore

	window     float64     // the skill spread allowed (+Inf: skill does not bind)
	maxLatency int         // the latency limit in force (0: any)
	attrs      []attrState // per queue attribute

	tg *teamGroup // with teams
}

// teamGroup is what a group of a queue with teams holds about them.
type teamGroup struct {
	// imbalance is the allowed imbalance, lobbies the sizes of the
	// tickets of more than one player, and once complete, teams is each
	// ticket's team and teamImbalance the split's imbalance.
	imbalance     float64
	lobbies       []int
	teams         []int
	teamImbalance float64
	// What teamsFit worked out for the group as it is, by ticket size
	// (reset when a ticket joins): whether a lobby of that size packs
	// (1 yes, -1 no, 0 not known), and the skills that complete it.
	packs []int8
	spans []*[]span
}

type regionScore struct {
	name         string
	worstLatency int
	rankSum      int
	// worstLimited is the worst latency among the tickets whose regions
	// were chosen by latency (-1: none), to tell whether the match needed
	// a relaxed latency limit.
	worstLimited int
}

// newGroup opens a group with c, or returns nil when c cannot be matched
// at its own wait even alone: no region within the latency limit, or a
// value that a binding rule lets match nobody (a lobby mixed on an equal
// attribute, an empty set on an intersect one).
func (f *former) newGroup(c *cand) *group {
	q, t := f.q, *c.t
	wait := f.now.Sub(t.CreatedAt)
	g := &group{oldest: t.CreatedAt, minSkill: t.Skill, maxSkill: t.Skill, window: math.Inf(1),
		maxLatency: q.MaxLatencyAt(wait), tickets: make([]domain.Ticket, 0, q.MaxUsers)}
	if q.Skill.Enabled() && wait < q.MaxWait.D() {
		g.window = q.Skill.Window(wait)
	}
	g.common = make([]regionScore, 0, len(c.regions))
	for _, r := range c.regions {
		if c.byLatency && g.maxLatency > 0 && r.latency > g.maxLatency {
			break // the rest, sorted by latency, are over the limit too
		}
		limited := -1
		if c.byLatency {
			limited = r.latency
		}
		g.common = append(g.common, regionScore{name: r.name, worstLatency: r.latency, rankSum: r.rank, worstLimited: limited})
	}
	if len(g.common) == 0 {
		return nil
	}
	if len(q.Attributes) > 0 {
		g.attrs = make([]attrState, len(q.Attributes))
		for i, a := range q.Attributes {
			st := &g.attrs[i]
			st.rule = a.effectiveRule()
			st.binds, st.maxDistance, st.step = a.at(wait)
			if st.binds && !st.canSeed(&c.vals[i]) {
				return nil
			}
			st.add(&c.vals[i])
		}
	}
	if q.Teams.Enabled() {
		g.tg = &teamGroup{imbalance: q.Teams.ImbalanceAt(wait)}
		if t.Size() > 1 {
			g.tg.lobbies = append(g.tg.lobbies, t.Size())
		}
	}
	g.tickets, g.size = append(g.tickets, t), t.Size()
	return g
}

// takes returns the index in c.regions of the named region if the group
// can use it for c (within the group's latency limit), else -1.
func (g *group) takes(c *cand, name string) int {
	for i := range c.regions {
		if c.regions[i].name == name {
			if c.byLatency && g.maxLatency > 0 && c.regions[i].latency > g.maxLatency {
				return -1
			}
			return i
		}
	}
	return -1
}

// shares reports whether the group has a region c accepts.
func (g *group) shares(c *cand) bool {
	for i := range g.common {
		if g.takes(c, g.common[i].name) >= 0 {
			return true
		}
	}
	return false
}

// join adds c to the group (accepts said it may).
func (f *former) join(g *group, c *cand) {
	t := c.t
	n := 0 // the regions kept, compacted in place
	for k := range g.common {
		r := &g.common[k]
		i := g.takes(c, r.name)
		if i < 0 {
			continue
		}
		cr := &c.regions[i]
		r.worstLatency = max(r.worstLatency, cr.latency)
		r.rankSum += cr.rank
		if c.byLatency {
			r.worstLimited = max(r.worstLimited, cr.latency)
		}
		if n != k {
			g.common[n] = *r
		}
		n++
	}
	g.common = g.common[:n]
	g.tickets, g.size = append(g.tickets, *t), g.size+t.Size()
	g.minSkill, g.maxSkill = min(g.minSkill, t.Skill), max(g.maxSkill, t.Skill)
	if t.CreatedAt.Before(g.oldest) {
		g.oldest = t.CreatedAt
	}
	for i := range g.attrs {
		g.attrs[i].add(&c.vals[i])
	}
	if f.split != nil {
		if t.Size() > 1 {
			g.tg.lobbies = append(g.tg.lobbies, t.Size())
		}
		clear(g.tg.packs)
		clear(g.tg.spans)
	}
}

// attrState is what a group holds of one attribute: the rule in force at
// its oldest ticket's wait, and what its tickets' values leave.
type attrState struct {
	rule        Rule
	binds       bool    // false: relaxed to any
	maxDistance float64 // distance rule, as relaxed
	step        int     // the relax step in force, -1 for none

	has    bool     // some ticket has a value
	str    string   // equal: the value
	differ bool     // equal: values differ, or a ticket is mixed (only when not binding)
	strs   []string // intersect: the values every ticket with one shares (the group's own slice)
	lo, hi float64  // distance: the lowest and highest value
}

// canSeed reports whether v could be matched under the binding rule at
// all: a mixed value or an empty set matches nobody.
func (s *attrState) canSeed(v *attrVal) bool {
	switch s.rule {
	case RuleEqual:
		return !v.mixed
	case RuleIntersect:
		return !v.has || len(v.strs) > 0
	}
	return true
}

// accepts reports whether v keeps the rule in force. A ticket without a
// value accepts any.
func (s *attrState) accepts(v *attrVal) bool {
	if !s.binds {
		return true
	}
	switch s.rule {
	case RuleEqual:
		return !v.mixed && (!v.has || !s.has || v.str == s.str)
	case RuleIntersect:
		if !v.has {
			return true
		}
		if !s.has {
			return len(v.strs) > 0
		}
		return shareAny(s.strs, v.strs)
	case RuleDistance:
		return !v.has || !s.has || math.Max(s.hi, v.num)-math.Min(s.lo, v.num) <= s.maxDistance
	}
	return true
}

// add takes v into the state.
func (s *attrState) add(v *attrVal) {
	if s.rule == RuleEqual && v.mixed {
		s.differ = true
		return
	}
	if !v.has {
		return
	}
	first := !s.has
	s.has = true
	switch s.rule {
	case RuleEqual:
		if first {
			s.str = v.str
		} else if v.str != s.str {
			s.differ = true
		}
	case RuleIntersect:
		if first {
			s.strs = slices.Clone(v.strs)
		} else {
			s.strs = keepShared(s.strs, v.strs)
		}
	case RuleDistance:
		if first {
			s.lo, s.hi = v.num, v.num
		} else {
			s.lo, s.hi = math.Min(s.lo, v.num), math.Max(s.hi, v.num)
		}
	}
}

// shareAny reports whether two sorted lists have a value in common.
func shareAny(a, b []string) bool {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			return true
		}
	}
	return false
}

// keepShared keeps, in place, the values of the sorted list a that the
// sorted list b holds.
func keepShared(a, b []string) []string {
	out := a[:0]
	j := 0
	for _, v := range a {
		for j < len(b) && b[j] < v {
			j++
		}
		if j < len(b) && b[j] == v {
			out = append(out, v)
		}
	}
	return out
}

// preferredRegions orders the common regions for PlayFab: lowest worst
// latency first (regions no member measured count as unknown, after the
// measured ones), then lowest summed preference rank, then the seed's order.
func (g *group) preferredRegions() []string {
	common := slices.Clone(g.common)
	slices.SortStableFunc(common, func(a, b regionScore) int {
		la, lb := a.worstLatency, b.worstLatency
		if la < 0 {
			la = math.MaxInt
		}
		if lb < 0 {
			lb = math.MaxInt
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.rankSum, b.rankSum))
	})
	out := make([]string, len(common))
	for i, c := range common {
		out[i] = c.name
	}
	return out
}

// match is the complete group as a match: its players, regions, teams,
// attribute values and quality.
func (f *former) match(g *group) domain.Match {
	q := f.q
	m := domain.Match{ID: uuid.NewString(), Queue: q.Name, Regions: g.preferredRegions(), State: domain.MatchAllocating,
		TicketIDs: make([]string, 0, len(g.tickets)), Players: make([]domain.Player, 0, g.size)}
	for _, t := range g.tickets {
		m.TicketIDs = append(m.TicketIDs, t.ID)
		for _, p := range t.Players {
			p.TicketID, p.LobbyID = t.ID, t.LobbyID
			m.Players = append(m.Players, p)
		}
	}
	quality := &domain.Quality{SkillSpread: g.maxSkill - g.minSkill, WaitMs: f.now.Sub(g.oldest).Milliseconds(), Relaxed: []string{}}
	if q.Skill.Enabled() && quality.SkillSpread > q.Skill.InitialWindow {
		quality.Relaxed = append(quality.Relaxed, "skill")
	}
	if q.MaxLatencyMs > 0 && len(q.LatencyRelax) > 0 && g.neededLatency() > q.MaxLatencyMs {
		quality.Relaxed = append(quality.Relaxed, "latency")
	}
	if q.Teams.Enabled() {
		m.Teams = teamsOf(g)
		quality.TeamImbalance = g.tg.teamImbalance
		if q.Teams.MaxImbalance > 0 && g.tg.teamImbalance > q.Teams.MaxImbalance {
			quality.Relaxed = append(quality.Relaxed, "teams")
		}
	}
	for i, a := range q.Attributes {
		st := &g.attrs[i]
		if v, ok := st.matchAttr(a.Type); ok {
			if m.Attributes == nil {
				m.Attributes = make(map[string]domain.MatchAttr, len(q.Attributes))
			}
			m.Attributes[a.Name] = v
		}
		if st.step >= 0 && st.brokeBase(a) {
			quality.Relaxed = append(quality.Relaxed, a.Name)
		}
	}
	slices.Sort(quality.Relaxed)
	m.Quality = quality
	return m
}

// neededLatency is the least latency limit the match needed: over its
// common regions, the lowest worst latency among the tickets whose regions
// were chosen by latency.
func (g *group) neededLatency() int {
	need := math.MaxInt
	for _, r := range g.common {
		need = min(need, max(r.worstLimited, 0))
	}
	return need
}

// teamsOf lists the players of each team of a complete group: the team of
// the oldest ticket first, then in the order of their first ticket, and
// players in ticket order.
func teamsOf(g *group) [][]string {
	var order []int // split team -> position
	pos := map[int]int{}
	for _, team := range g.tg.teams {
		if _, ok := pos[team]; !ok {
			pos[team] = len(order)
			order = append(order, team)
		}
	}
	out := make([][]string, len(order))
	for i, t := range g.tickets {
		k := pos[g.tg.teams[i]]
		for _, p := range t.Players {
			out[k] = append(out[k], p.ID)
		}
	}
	return out
}

// matchAttr is the match's value of the attribute: for equal the common
// value (none when values differ), for intersect the shared values (none
// when nothing is shared), for distance the lowest and highest value; none
// when no ticket has one.
func (s *attrState) matchAttr(typ domain.AttrType) (domain.MatchAttr, bool) {
	if !s.has {
		return domain.MatchAttr{}, false
	}
	switch s.rule {
	case RuleEqual:
		return domain.MatchAttr{Type: typ, Value: s.str}, !s.differ
	case RuleIntersect:
		return domain.MatchAttr{Type: typ, Values: slices.Clone(s.strs)}, len(s.strs) > 0
	case RuleDistance:
		return domain.MatchAttr{Type: typ, Min: s.lo, Max: s.hi}, true
	}
	return domain.MatchAttr{}, false
}

// brokeBase reports whether the group's values break the attribute's rule
// as written (before any relax step): the match needed the relaxation.
func (s *attrState) brokeBase(a Attribute) bool {
	switch s.rule {
	case RuleEqual:
		return s.differ
	case RuleIntersect:
		return s.has && len(s.strs) == 0
	case RuleDistance:
		return s.has && s.hi-s.lo > a.MaxDistance
	}
	return false
}
