// Package domain is lobbyd's vocabulary: players, tickets, matches and
// lobbies, their statuses, the lobby rules, the messages nodes send each
// other, and the error kinds every package branches on.
//
// It depends on nothing else of lobbyd and on no Redis client. The store
// package persists these values; the lobby, matchmaker and partyalloc
// packages each declare, in these terms, the small store interfaces they
// use, and cmd/lobbyd wires the Redis store into them.
package domain
