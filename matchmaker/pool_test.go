package matchmaker

import (
	"testing"
	"time"

	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/stretchr/testify/assert"
)

func poolIDs(p *pool) []string {
	var ids []string
	for _, t := range p.tickets() {
		ids = append(ids, t.ID)
	}
	return ids
}

// The pool keeps its tickets oldest first across arrivals out of order (a
// requeued ticket keeps its original time), removals and re-reads.
func TestPoolOrder(t *testing.T) {
	base := time.Now()
	at := func(id string, ms int) domain.Ticket {
		tk := ticketOf(id, 1)
		tk.CreatedAt = base.Add(time.Duration(ms) * time.Millisecond)
		return tk
	}
	p := newPool()
	p.add([]domain.Ticket{at("a", 10), at("c", 30)})
	assert.Equal(t, []string{"a", "c"}, poolIDs(p))

	p.add([]domain.Ticket{at("d", 40), at("b", 20)}) // b was requeued
	assert.Equal(t, []string{"a", "b", "c", "d"}, poolIDs(p))

	p.remove("b", "missing", "a")
	assert.Equal(t, []string{"c", "d"}, poolIDs(p))

	held := at("c", 30)
	held.HoldUntil = base.Add(time.Minute)
	p.add([]domain.Ticket{held, at("e", 5)})
	assert.Equal(t, []string{"e", "c", "d"}, poolIDs(p), "a re-read ticket keeps one place")
	assert.Equal(t, held.HoldUntil, p.byID["c"].HoldUntil, "and its new hold")

	p.remove("c")
	p.add([]domain.Ticket{at("c", 30)}) // requeued again after leaving
	assert.Equal(t, []string{"e", "c", "d"}, poolIDs(p))
	assert.Len(t, p.byID, 3)
}
