package store

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/lobbyd/lobbyd/internal/domain"
)

// unavailableCodes are the Redis error codes (an error reply's first word)
// that mean "not now": the server is loading its data, is a replica, is a
// primary that lost its replicas, the cluster is reconfiguring, or a script
// keeps it busy.
var unavailableCodes = []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS"}

// isUnavailable reports whether err means Redis could not be reached or
// could not serve the command for now, so the same operation may succeed
// if tried again: a refused, reset or closed connection, a timeout (the
// context's deadline included), a connection pool with no free connection,
// or one of the Redis error codes listed in unavailableCodes. An error from
// Redis about the command itself, or a domain error, is not.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		code, _, _ := strings.Cut(strings.TrimPrefix(re.Error(), "ERR "), " ")
		return slices.Contains(unavailableCodes, code) // "BUSY", not "BUSYGROUP"
	}
	return false
}

// unavailableError is an error of Redis's that isUnavailable recognises,
// marked as domain.ErrUnavailable for the store's callers, who do not know
// go-redis. Its message is the original's.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, domain.ErrUnavailable} }

// noticed runs onUnavailable when err means "not now".
func (h unavailableHook) noticed(ctx context.Context, err error) {
	if h.onUnavailable != nil && isUnavailable(err) {
		h.onUnavailable(ctx)
	}
}

// markUnavailable returns err marked as domain.ErrUnavailable if it is one
// (once), and err as it is otherwise; marked says which.
func markUnavailable(err error) (_ error, marked bool) {
	if !isUnavailable(err) || errors.Is(err, domain.ErrUnavailable) {
		return err, false
	}
	return unavailableError{err}, true
}

// unavailableHook marks every command's error that means "not now", after
// go-redis's own retries (it wraps the whole of a command's processing), so
// whatever a store method returns carries the mark through its wrapping.
type unavailableHook struct {
	// onUnavailable, when set, runs for each command or pipeline that
	// failed so: a cluster client reloads its slot map (see cluster.go).
	onUnavailable func(context.Context)
}

func (unavailableHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h unavailableHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.noticed(ctx, err)
		err, marked := markUnavailable(err)
		if marked {
			cmd.SetErr(err)
		}
		return err
	}
}

func (h unavailableHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		h.noticed(ctx, err)
		for _, cmd := range cmds {
			if cerr, marked := markUnavailable(cmd.Err()); marked {
				cmd.SetErr(cerr)
			}
		}
		err, _ = markUnavailable(err)
		return err
	}
}
