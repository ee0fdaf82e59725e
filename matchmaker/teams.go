package matchmaker

import (
	"cmp"
	"math"
	"slices"
)

// Team balancing. A match's tickets are split into count teams of exactly
// size players, each ticket whole on one team (a lobby is never split).
// Every player of a ticket counts with the ticket's skill (a lobby's is its
// members' mean), so a team's mean skill is the sum over its tickets of
// size × skill, divided by the team size; the imbalance of a split is the
// highest team mean minus the lowest. bestSplit looks for the split of
// least imbalance:
//
//   - up to exactSplitTickets tickets, or in a queue whose teams can be
//     filled in at most exactSplitLeaves ways, exactly: a search over
//     every assignment, larger tickets first, where a ticket may open only
//     the first empty team (teams are interchangeable) and never overfill
//     one. The number of splits is at most the multinomial
//     n! / (size!^count · count!) for n = count × size solos: 126 for 5v5,
//     945 for five teams of two, 5,775 for three teams of four, so the
//     search costs from 5 µs (5v5) to about 220 µs (3×4; see
//     BenchmarkBestSplit).
//   - beyond, by a heuristic: tickets by size, then skill, descending,
//     each to the team of lowest skill sum that has room (lobbies are
//     first packed by packTeams when that greedy pass cannot place them);
//     then, while it helps, the swap of two tickets of the same size
//     between two teams that best narrows the gap between the strongest
//     and the weakest team (or, at an equal gap, evens the sums out), at
//     most maxSwapRounds rounds of O(n²·count).
//
// The simulation test checks the exact search against brute force on
// every match of up to 10 players, and TestSplitHeuristic the heuristic
// against the exact search.
const (
	exactSplitTickets = 10
	// exactSplitLeaves: a queue whose teams can be filled with solos in at
	// most this many ways (2x7, 3x4 and smaller) is always searched
	// exactly.
	exactSplitLeaves = 6000
	maxSwapRounds    = 32
	// packBudget bounds the nodes of the packing search for lobbies; past
	// it a set of lobbies is taken as not packable (a group then waits for
	// other tickets rather than stall the pass).
	packBudget = 20000
)

// splitter finds team splits, reusing its buffers across calls. A former
// owns one; it is not safe for concurrent use.
type splitter struct {
	count, size int
	exact       bool // every split of the queue is searched exactly

	order  []int     // ticket indexes, larger (then stronger) first
	fill   []int     // players per team
	sum    []float64 // skill sum per team
	cur    []int     // team of each ticket (by input index) in the search
	best   []int
	bestIm float64
	sizes  []int
	skills []float64
}

func newSplitter(count, size int) *splitter {
	return &splitter{count: count, size: size, fill: make([]int, count), sum: make([]float64, count),
		exact: soloSplits(count, size) <= exactSplitLeaves}
}

// soloSplits is the number of ways to split count × size solos into count
// teams of size: (count·size)! / (size!^count · count!).
func soloSplits(count, size int) float64 {
	lg := func(n int) float64 { v, _ := math.Lgamma(float64(n + 1)); return v }
	return math.Round(math.Exp(lg(count*size) - float64(count)*lg(size) - lg(count)))
}

// bestSplit splits tickets of the given sizes and skills (sizes summing to
// count × size) and returns each ticket's team (a slice valid until the
// next call: the splitter reuses it) and the split's imbalance; ok is false when no split keeps every
// ticket whole.
func (s *splitter) bestSplit(sizes []int, skills []float64) (teams []int, imbalance float64, ok bool) {
	n := len(sizes)
	s.sizes, s.skills = sizes, skills
	s.order = s.order[:0]
	for i := range n {
		s.order = append(s.order, i)
	}
	slices.SortStableFunc(s.order, func(a, b int) int {
		return cmp.Or(cmp.Compare(sizes[b], sizes[a]), cmp.Compare(skills[b], skills[a]))
	})
	clear(s.fill)
	clear(s.sum)
	s.cur = slices.Grow(s.cur[:0], n)[:n]
	s.best, s.bestIm = s.best[:0], math.Inf(1) // reused: the caller copies the result
	if n <= exactSplitTickets || s.exact {
		s.search()
	} else {
		s.heuristic()
	}
	if math.IsInf(s.bestIm, 1) {
		return nil, 0, false
	}
	return s.best, s.bestIm, true
}

// search records the best of every split (see eachSplit).
func (s *splitter) search() {
	s.eachSplit(0, func() {
		if im := s.imbalance(); im < s.bestIm {
			s.bestIm = im
			s.best = append(s.best[:0], s.cur...)
		}
	})
}

// eachSplit assigns s.order[k:] to teams in every way that overfills none,
// a ticket opening only the first empty team (teams are
// interchangeable), and calls leaf for each complete assignment, with
// s.fill, s.sum and s.cur describing it.
func (s *splitter) eachSplit(k int, leaf func()) {
	if k == len(s.order) {
		leaf()
		return
	}
	i := s.order[k]
	size, w := s.sizes[i], float64(s.sizes[i])*s.skills[i]
	for j := range s.count {
		if s.fill[j]+size > s.size {
			continue
		}
		s.fill[j] += size
		s.sum[j] += w
		s.cur[i] = j
		s.eachSplit(k+1, leaf)
		s.fill[j] -= size
		s.sum[j] -= w
		if s.fill[j] == 0 {
			break // the other empty teams would give the same splits
		}
	}
}

// imbalance is the highest minus the lowest team mean of the current sums.
func (s *splitter) imbalance() float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range s.sum {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return (hi - lo) / float64(s.size)
}

// heuristic is bestSplit without the exact search: two starts, each
// improved by swaps, the better kept. Both place the lobbies first (to the
// team of lowest sum with room, or as packTeams finds room); then the
// solos, strongest first, go to the team of lowest sum with room (greedy),
// or in a snake draft (team 1, 2, …, k, k, …, 2, 1, …).
func (s *splitter) heuristic() {
	for _, snake := range []bool{false, true} {
		if !s.placeLobbies() {
			return
		}
		s.placeSolos(snake)
		s.improveBySwaps()
		if im := s.imbalance(); im < s.bestIm {
			s.best, s.bestIm = append(s.best[:0], s.cur...), im
		}
	}
}

// placeLobbies empties the teams and places the tickets of more than one
// player. It reports false when they cannot be packed.
func (s *splitter) placeLobbies() bool {
	clear(s.fill)
	clear(s.sum)
	place := func(i, j int) {
		s.cur[i] = j
		s.fill[j] += s.sizes[i]
		s.sum[j] += float64(s.sizes[i]) * s.skills[i]
	}
	var lobbies []int
	greedy := true
	for _, i := range s.order { // larger first
		if s.sizes[i] == 1 {
			break
		}
		lobbies = append(lobbies, i)
		j := -1
		for t := range s.count {
			if s.fill[t]+s.sizes[i] <= s.size && (j < 0 || s.sum[t] < s.sum[j]) {
				j = t
			}
		}
		if j < 0 {
			greedy = false
			break
		}
		place(i, j)
	}
	if greedy {
		return true
	}
	clear(s.fill)
	clear(s.sum)
	sizes := make([]int, len(lobbies))
	for k, i := range lobbies {
		sizes[k] = s.sizes[i]
	}
	teams, ok := packTeams(sizes, s.count, s.size)
	if !ok {
		return false
	}
	for k, i := range lobbies {
		place(i, teams[k])
	}
	return true
}

// placeSolos places the solos, strongest first, greedily or in a snake
// draft, each skipping full teams.
func (s *splitter) placeSolos(snake bool) {
	next, step := 0, 1
	for _, i := range s.order {
		if s.sizes[i] > 1 {
			continue
		}
		j := -1
		if snake {
			for s.fill[next] >= s.size { // some team has room: the sizes add up
				next, step = s.advance(next, step)
			}
			j = next
			next, step = s.advance(next, step)
		} else {
			for t := range s.count {
				if s.fill[t] < s.size && (j < 0 || s.sum[t] < s.sum[j]) {
					j = t
				}
			}
		}
		s.cur[i] = j
		s.fill[j]++
		s.sum[j] += s.skills[i]
	}
}

// advance moves a snake draft to its next team: 0, 1, …, k-1, k-1, …, 0, 0, 1, …
func (s *splitter) advance(t, step int) (int, int) {
	if n := t + step; n >= 0 && n < s.count {
		return n, step
	}
	return t, -step
}

// improveBySwaps swaps tickets of equal size between two teams while a
// swap narrows the gap between the strongest and the weakest team, or
// keeps it and brings the teams' sums closer together (lower sum of
// squares), at most maxSwapRounds times. Each round tries every pair of
// tickets on different teams: O(n²·count).
func (s *splitter) improveBySwaps() {
	spread := func() (gap, squares float64) {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range s.sum {
			lo, hi, squares = math.Min(lo, v), math.Max(hi, v), squares+v*v
		}
		return hi - lo, squares
	}
	for range maxSwapRounds {
		gap, squares := spread()
		bestA, bestB := -1, -1
		for a := range s.cur {
			for b := a + 1; b < len(s.cur); b++ {
				ta, tb := s.cur[a], s.cur[b]
				if ta == tb || s.sizes[a] != s.sizes[b] {
					continue
				}
				d := float64(s.sizes[a]) * (s.skills[a] - s.skills[b]) // what moves from ta to tb
				s.sum[ta], s.sum[tb] = s.sum[ta]-d, s.sum[tb]+d
				g, sq := spread()
				s.sum[ta], s.sum[tb] = s.sum[ta]+d, s.sum[tb]-d
				if g < gap-1e-9 || (g < gap+1e-9 && sq < squares-1e-9) {
					bestA, bestB, gap, squares = a, b, g, sq
				}
			}
		}
		if bestA < 0 {
			return
		}
		ta, tb := s.cur[bestA], s.cur[bestB]
		d := float64(s.sizes[bestA]) * (s.skills[bestA] - s.skills[bestB])
		s.sum[ta], s.sum[tb] = s.sum[ta]-d, s.sum[tb]+d
		s.cur[bestA], s.cur[bestB] = tb, ta
	}
}

// span is a closed interval of skills.
type span struct{ lo, hi float64 }

// inSpans reports whether x is in one of the sorted, disjoint spans.
func inSpans(spans []span, x float64) bool {
	i, _ := slices.BinarySearchFunc(spans, x, func(s span, x float64) int { return cmp.Compare(s.hi, x) })
	return i < len(spans) && spans[i].lo <= x
}

// completionSpans returns the skills a ticket of k players may have to
// complete a group of the given tickets (which lack exactly k players)
// with a split of imbalance at most limit, as sorted, disjoint spans.
// Every split of the group that leaves one team exactly k short and the
// others full gives one span: with that team's skill sum a and the other
// teams' sums between lo and hi (hi - lo within limit × size), the ticket's
// skill x must bring a + k·x within [hi - limit·size, lo + limit·size].
// A group is asked once per ticket size it lacks, and then each ticket is
// checked by a binary search, so a group that waits for a rare ticket
// costs the others little. exact is false (and spans nil) for a queue
// that bestSplit does not search exactly.
func (s *splitter) completionSpans(sizes []int, skills []float64, k int, limit float64) (spans []span, exact bool) {
	if len(sizes)+1 > exactSplitTickets && !s.exact {
		return nil, false
	}
	s.sizes, s.skills = sizes, skills
	s.order = s.order[:0]
	for i := range sizes {
		s.order = append(s.order, i)
	}
	slices.SortStableFunc(s.order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })
	clear(s.fill)
	clear(s.sum)
	s.cur = slices.Grow(s.cur[:0], len(sizes))[:len(sizes)]
	room := limit * float64(s.size)
	s.eachSplit(0, func() {
		short := -1
		lo, hi := math.Inf(1), math.Inf(-1)
		for j := range s.count {
			if s.fill[j] == s.size {
				lo, hi = math.Min(lo, s.sum[j]), math.Max(hi, s.sum[j])
				continue
			}
			if short >= 0 || s.fill[j] != s.size-k {
				return // the ticket could not fill every team
			}
			short = j
		}
		if short < 0 || hi-lo > room {
			return
		}
		a := s.sum[short]
		spans = append(spans, span{(hi - room - a) / float64(k), (lo + room - a) / float64(k)})
	})
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	merged := spans[:0]
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.lo <= merged[n-1].hi {
			merged[n-1].hi = math.Max(merged[n-1].hi, sp.hi)
			continue
		}
		merged = append(merged, sp)
	}
	return merged, true
}

// packTeams assigns tickets of the given sizes to count teams of room size
// each, or reports that they do not fit: first fit by decreasing size,
// then, if that fails, a depth-first search of at most packBudget nodes.
// Teams are returned in the order of sizes.
func packTeams(sizes []int, count, size int) ([]int, bool) {
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sizes[b], sizes[a]) })
	teams := make([]int, len(sizes))
	fill := make([]int, count)
	placed := true
	for _, i := range order {
		j := slices.IndexFunc(fill, func(f int) bool { return f+sizes[i] <= size })
		if j < 0 {
			placed = false
			break
		}
		fill[j] += sizes[i]
		teams[i] = j
	}
	if placed {
		return teams, true
	}
	clear(fill)
	budget := packBudget
	var place func(k int) bool
	place = func(k int) bool {
		if k == len(order) {
			return true
		}
		if budget--; budget < 0 {
			return false
		}
		i := order[k]
		for j := range count {
			if fill[j]+sizes[i] > size {
				continue
			}
			fill[j] += sizes[i]
			teams[i] = j
			if place(k + 1) {
				return true
			}
			fill[j] -= sizes[i]
			if fill[j] == 0 {
				break // the other empty teams would fail the same way
			}
		}
		return false
	}
	return teams, place(0)
}
