package domain

import (
	"errors"
	"fmt"
)

// Error kinds callers branch on (with errors.Is). The gateway maps them to
// protocol error codes; messages never carry secrets.
var (
	// ErrNotFound means the ticket, match, lobby or claim does not exist
	// (any more).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the player already holds a ticket, or the ticket or
	// lobby has moved on (matched, cancelled, queued) so the operation no
	// longer applies.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means a request can never succeed as made (an unknown
	// region, a ticket too large for its queue); other errors wrap it.
	ErrInvalid = errors.New("invalid request")
	// ErrInLobby means a player asked for a solo ticket while holding a
	// place in a lobby: a lobby member queues with the lobby.
	// It is a kind of ErrConflict.
	ErrInLobby = fmt.Errorf("you are in a lobby: %w", ErrConflict)
	// ErrTooLarge means a ticket holds a string or a list longer than its
	// cap (MaxPlayerNameBytes and the others). It is a kind of ErrInvalid.
	ErrTooLarge = fmt.Errorf("too large: %w", ErrInvalid)
	// ErrForbidden means only the lobby's owner may do that.
	ErrForbidden = errors.New("only the lobby owner may do that")
	// ErrFull means the lobby has no room left.
	ErrFull = errors.New("lobby is full")
	// ErrNotLeader means the caller does not hold the queue's lease (any
	// more).
	ErrNotLeader = errors.New("not the queue's leader")
	// ErrStaleAttempt means a newer allocation attempt owns the match, or
	// the match has already ended another way; the caller's result is an
	// orphan.
	ErrStaleAttempt = errors.New("allocation attempt is stale")
	// ErrUnavailable means the store could not be reached or could not
	// serve the operation for now (a refused or reset connection, a
	// timeout, Redis loading, failing over or busy), so the same operation
	// may succeed if tried again. The store wraps such errors with it; the
	// original error stays in the chain and in the message.
	ErrUnavailable = errors.New("store unavailable")
)
