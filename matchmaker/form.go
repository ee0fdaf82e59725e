package matchmaker

import (
	"slices"

	"github.com/google/uuid"

	"github.com/lobbyd/lobbyd/store"
)

// formMatches groups searching tickets, oldest first, into matches of exactly
// q.MaxUsers players that share at least one region. It is first fit over
// open groups in age order: each ticket joins the oldest open group it fits
// (by size and region) or opens a new one, so the oldest ticket is always in
// the first group to fill. A ticket is never split.
func formMatches(q Queue, tickets []store.Ticket) []store.Match {
	type group struct {
		tickets []store.Ticket
		size    int
		regions []string
	}
	var open []*group
	var matches []store.Match
	for _, t := range tickets {
		regions := ticketRegions(q, t)
		if t.Size() == 0 || t.Size() > q.MaxUsers || len(regions) == 0 {
			continue
		}
		placed := false
		for i, g := range open {
			if g.size+t.Size() > q.MaxUsers {
				continue
			}
			common := intersect(g.regions, regions)
			if len(common) == 0 {
				continue
			}
			g.tickets, g.size, g.regions = append(g.tickets, t), g.size+t.Size(), common
			if g.size == q.MaxUsers {
				matches = append(matches, newMatch(q, g.tickets, g.regions))
				open = slices.Delete(open, i, i+1)
			}
			placed = true
			break
		}
		if !placed {
			g := &group{tickets: []store.Ticket{t}, size: t.Size(), regions: regions}
			if g.size == q.MaxUsers {
				matches = append(matches, newMatch(q, g.tickets, g.regions))
			} else {
				open = append(open, g)
			}
		}
	}
	return matches
}

// ticketRegions is the ticket's acceptable regions in its order of
// preference, limited to the queue's; a ticket without regions takes the
// queue's.
func ticketRegions(q Queue, t store.Ticket) []string {
	if len(t.Regions) == 0 {
		return q.Regions
	}
	return intersect(t.Regions, q.Regions)
}

// intersect keeps the elements of a that are in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, r := range a {
		if slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

func newMatch(q Queue, tickets []store.Ticket, regions []string) store.Match {
	m := store.Match{ID: uuid.NewString(), Queue: q.Name, Regions: regions, State: store.MatchAllocating}
	for _, t := range tickets {
		m.TicketIDs = append(m.TicketIDs, t.ID)
		for _, p := range t.Players {
			p.TicketID, p.LobbyID = t.ID, t.LobbyID
			m.Players = append(m.Players, p)
		}
	}
	return m
}
