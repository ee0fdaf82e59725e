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
// (a whole lobby) is never split. A ticket is compatible with a group when:
//
//   - the group stays within MaxUsers;
//   - they share an acceptable region (see acceptable);
//   - the group's skill spread, with the ticket, fits the queue's skill
//     window at the wait of the group's oldest ticket, unless that ticket
//     has waited MaxWait or more: then skill no longer binds the group.
//
// Cost: O(n·g) for n tickets and g open groups (g ≤ n, in practice small).
func formMatches(q Queue, tickets []domain.Ticket, now time.Time) []domain.Match {
	var matches []domain.Match
	f := former{q: q, now: now, emit: func(m domain.Match) { matches = append(matches, m) }}
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
}

func (f *former) add(t domain.Ticket) {
	if t.Size() == 0 || t.Size() > f.q.MaxUsers {
		return
	}
	regions := acceptable(f.q, t)
	if len(regions) == 0 {
		return
	}
	for i, g := range f.open {
		if !g.accepts(f.q, t, regions, f.now) {
			continue
		}
		g.add(t, regions)
		if g.size == f.q.MaxUsers {
			f.emit(g.match(f.q))
			f.open = slices.Delete(f.open, i, i+1)
		}
		return
	}
	g := newGroup(f.q, t, regions)
	if g.size == f.q.MaxUsers {
		f.emit(g.match(f.q))
	} else {
		f.open = append(f.open, g)
	}
}

// region is one region acceptable to a ticket: its latency (-1 unknown)
// and its rank in the ticket's order of preference.
type region struct {
	name    string
	latency int
	rank    int
}

// acceptable lists the regions of q a ticket accepts, most preferred
// first: its own regions (in its order) if it gave any; else the regions
// it measured within the queue's MaxLatencyMs (by latency); else all of the
// queue's regions (in the queue's order).
func acceptable(q Queue, t domain.Ticket) []region {
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
			if ms, ok := t.Latencies[r]; ok && ms >= 0 && (q.MaxLatencyMs == 0 || ms <= q.MaxLatencyMs) {
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

func latencyOf(t domain.Ticket, r string) int {
	if ms, ok := t.Latencies[r]; ok {
		return ms
	}
	return -1
}

// group is an open match being filled.
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
}

type regionScore struct {
	name         string
	worstLatency int
	rankSum      int
}

func newGroup(q Queue, t domain.Ticket, regions []region) *group {
	g := &group{oldest: t.CreatedAt, minSkill: t.Skill, maxSkill: t.Skill,
		common: make([]regionScore, len(regions)), tickets: make([]domain.Ticket, 1, q.MaxUsers)}
	for i, r := range regions {
		g.common[i] = regionScore{name: r.name, worstLatency: r.latency, rankSum: r.rank}
	}
	g.tickets[0], g.size = t, t.Size()
	return g
}

// regionIndex is the index of the named region in regions, or -1.
func regionIndex(regions []region, name string) int {
	return slices.IndexFunc(regions, func(r region) bool { return r.name == name })
}

// shares reports whether the group has a region in regions.
func (g *group) shares(regions []region) bool {
	return slices.ContainsFunc(g.common, func(c regionScore) bool { return regionIndex(regions, c.name) >= 0 })
}

func (g *group) accepts(q Queue, t domain.Ticket, regions []region, now time.Time) bool {
	if g.size+t.Size() > q.MaxUsers {
		return false
	}
	if !g.shares(regions) {
		return false
	}
	wait := now.Sub(g.oldest)
	if q.Skill.Enabled() && wait < q.MaxWait.D() {
		spread := math.Max(g.maxSkill, t.Skill) - math.Min(g.minSkill, t.Skill)
		if spread > q.Skill.Window(wait) {
			return false
		}
	}
	return true
}

func (g *group) add(t domain.Ticket, regions []region) {
	kept := g.common[:0]
	for _, c := range g.common {
		if i := regionIndex(regions, c.name); i >= 0 {
			c.worstLatency = max(c.worstLatency, regions[i].latency)
			c.rankSum += regions[i].rank
			kept = append(kept, c)
		}
	}
	g.common = kept
	g.tickets, g.size = append(g.tickets, t), g.size+t.Size()
	g.minSkill, g.maxSkill = math.Min(g.minSkill, t.Skill), math.Max(g.maxSkill, t.Skill)
	if t.CreatedAt.Before(g.oldest) {
		g.oldest = t.CreatedAt
	}
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

func (g *group) match(q Queue) domain.Match {
	m := domain.Match{ID: uuid.NewString(), Queue: q.Name, Regions: g.preferredRegions(), State: domain.MatchAllocating,
		TicketIDs: make([]string, 0, len(g.tickets)), Players: make([]domain.Player, 0, g.size)}
	for _, t := range g.tickets {
		m.TicketIDs = append(m.TicketIDs, t.ID)
		for _, p := range t.Players {
			p.TicketID, p.LobbyID = t.ID, t.LobbyID
			m.Players = append(m.Players, p)
		}
	}
	return m
}
