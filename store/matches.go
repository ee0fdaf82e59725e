package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/lobbyd/lobbyd/internal/domain"
	"github.com/redis/go-redis/v9"
)

// matchTTL bounds how long a match record lives. PlayFab shuts a relay down
// about ten minutes after nobody joined it, so an hour is plenty.
const matchTTL = time.Hour

// allocStreamMaxLen caps each queue's allocation stream (approximately).
// Entries are acknowledged within seconds; the cap only bounds history.
const allocStreamMaxLen = 100000

// CommitMatches records matches formed in one queue, each all or nothing, in
// one atomic script: every ticket must still be searching; they leave the
// queue, the match is recorded as allocating, and its allocation job joins the
// queue's stream. ID, TicketIDs, Players (with their TicketID and LobbyID),
// Regions, and Teams, Attributes and Quality (in one JSON field, "formed")
// of each match are recorded.
func (s *Store) CommitMatches(ctx context.Context, queue string, matches []domain.Match) ([]domain.CommitResult, error) {
	if len(matches) == 0 {
		return nil, nil
	}
	keys := []string{s.keys.searchingKey(queue), s.keys.allocStreamKey(queue), s.keys.searchingDataKey(queue)}
	args := []any{msOf(time.Now()), int(matchTTL.Seconds()), allocStreamMaxLen, len(matches), queue}
	for _, m := range matches {
		regions, err := gojson.Marshal(nonNil(m.Regions))
		if err != nil {
			return nil, fmt.Errorf("encode regions of match %s: %w", m.ID, err)
		}
		players, err := gojson.Marshal(m.Players)
		if err != nil {
			return nil, fmt.Errorf("encode players of match %s: %w", m.ID, err)
		}
		tickets, err := gojson.Marshal(m.TicketIDs)
		if err != nil {
			return nil, fmt.Errorf("encode tickets of match %s: %w", m.ID, err)
		}
		formed, err := encodeFormed(m)
		if err != nil {
			return nil, fmt.Errorf("encode match %s: %w", m.ID, err)
		}
		keys = append(keys, s.keys.matchKey(queue, m.ID))
		args = append(args, m.ID, string(regions), string(players), string(tickets), formed, len(m.TicketIDs))
		for _, t := range m.TicketIDs {
			keys = append(keys, s.keys.ticketKey(queue, t))
			args = append(args, t)
		}
	}
	res, err := commitMatchesScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("commit %d matches in %s: %w", len(matches), queue, err)
	}
	out := make([]domain.CommitResult, len(matches))
	for i, r := range res {
		out[i] = domain.CommitResult{MatchID: matches[i].ID, Outcome: domain.CommitOutcome(r)}
		if t, ok := strings.CutPrefix(r, "stale:"); ok {
			out[i].Outcome, out[i].StaleTicket = domain.CommitStale, t
		}
	}
	return out, nil
}

// formed is how a match was formed, as its record's "formed" field holds
// it: one JSON field rather than three, so a commit writes one more field,
// not three. Matches recorded by a lobbyd before teams and attributes have
// none.
type formed struct {
	Teams      [][]string                  `json:"teams,omitempty"`
	Attributes map[string]domain.MatchAttr `json:"attributes,omitempty"`
	Quality    *domain.Quality             `json:"quality,omitempty"`
}

// encodeFormed is the "formed" field of m, empty when m has none of it.
func encodeFormed(m domain.Match) (string, error) {
	if m.Teams == nil && m.Attributes == nil && m.Quality == nil {
		return "", nil
	}
	b, err := gojson.Marshal(formed{Teams: m.Teams, Attributes: m.Attributes, Quality: m.Quality})
	return string(b), err
}

// Match reads one match, or returns ErrNotFound.
func (s *Store) Match(ctx context.Context, queue, matchID string) (domain.Match, error) {
	f, err := s.rdb.HGetAll(ctx, s.keys.matchKey(queue, matchID)).Result()
	if err != nil {
		return domain.Match{}, fmt.Errorf("read match %s: %w", matchID, err)
	}
	return decodeMatch(matchID, f)
}

// decodeMatch decodes a match hash; ErrNotFound if it is empty.
func decodeMatch(matchID string, f map[string]string) (domain.Match, error) {
	if len(f) == 0 || f["id"] == "" {
		return domain.Match{}, domain.ErrNotFound
	}
	m := domain.Match{
		ID: f["id"], Queue: f["queue"], State: domain.MatchState(f["state"]),
		PartyID: f["partyId"], NetworkDescriptor: f["networkDescriptor"],
		InvitationID: f["invitationId"], FailReason: f["failReason"], LastError: f["lastError"],
	}
	if ms, _ := strconv.ParseInt(f["readyAt"], 10, 64); ms > 0 {
		m.ReadyAt = timeOfMs(ms)
	}
	m.Attempt, _ = strconv.Atoi(f["attempt"])
	ms, _ := strconv.ParseInt(f["createdAt"], 10, 64)
	m.CreatedAt = timeOfMs(ms)
	var requeued []string
	for field, dst := range map[string]any{"tickets": &m.TicketIDs, "players": &m.Players, "regions": &m.Regions, "requeued": &requeued, "left": &m.Left} {
		if err := decodeLuaJSON(f[field], dst); err != nil {
			return domain.Match{}, fmt.Errorf("decode match %s %s: %w", matchID, field, err)
		}
	}
	if len(requeued) > 0 { // first element is the script's status
		m.Requeued = requeued[1:]
	}
	if v := f["formed"]; v != "" {
		var fm formed
		if err := json.Unmarshal([]byte(v), &fm); err != nil {
			return domain.Match{}, fmt.Errorf("decode match %s formed: %w", matchID, err)
		}
		m.Teams, m.Attributes, m.Quality = fm.Teams, fm.Attributes, fm.Quality
	}
	return m, nil
}

// fieldMap turns a flat field/value list, as a script returns HGETALL's
// reply, into a map.
func fieldMap(flat []any) map[string]string {
	f := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		f[k] = v
	}
	return f
}

// decodeLuaJSON decodes JSON written by Lua's cjson, which encodes an empty
// array as an empty object.
func decodeLuaJSON(s string, dst any) error {
	if s == "" || s == "{}" {
		return nil
	}
	return json.Unmarshal([]byte(s), dst)
}

// BeginAttempt starts an allocation attempt on an allocating match and
// returns the match with the attempt the caller now owns. For a match in any
// other state it returns the match unchanged; the caller looks at State.
func (s *Store) BeginAttempt(ctx context.Context, queue, matchID, nodeID string) (domain.Match, error) {
	flat, err := s.runScript(ctx, beginAttemptScript, []string{s.keys.matchKey(queue, matchID)}, nodeID).Slice()
	if err != nil {
		return domain.Match{}, fmt.Errorf("begin allocation of match %s: %w", matchID, err)
	}
	return decodeMatch(matchID, fieldMap(flat))
}

// StoreParty records the party of a match, if the caller still owns the
// match's current attempt. It returns the stored match: when another
// allocator stored a party first, that party (and ErrStaleAttempt). It
// returns ErrNotFound if the match's record is gone (Redis lost it), and is
// safe to call again after an error: a party it stored is found stored.
func (s *Store) StoreParty(ctx context.Context, queue, matchID string, attempt int, partyID, descriptor, invitationID string) (domain.Match, error) {
	flat, err := s.runScript(ctx, storePartyScript, []string{s.keys.matchKey(queue, matchID)},
		attempt, partyID, descriptor, invitationID, msOf(time.Now())).Slice()
	if err != nil || len(flat) == 0 {
		return domain.Match{}, fmt.Errorf("store party of match %s: %w", matchID, cmp.Or(err, errors.New("empty reply")))
	}
	res, _ := flat[0].(string)
	m, err := decodeMatch(matchID, fieldMap(flat[1:]))
	if err != nil {
		return domain.Match{}, err
	}
	if res != "ok" {
		return m, domain.ErrStaleAttempt
	}
	return m, nil
}

// FailMatch marks an allocating match failed, if the caller owns its current
// attempt, and puts its tickets back in the queue with their original
// creation time, except those whose players left meanwhile. Requeued
// tickets are held out of formation until holdUntil. It returns the match as
// stored afterwards, with Requeued listing the tickets put back (also when
// a re-sent script finds the match already failed).
func (s *Store) FailMatch(ctx context.Context, m domain.Match, reason string, holdUntil time.Time) (domain.Match, error) {
	keys := []string{s.keys.matchKey(m.Queue, m.ID), s.keys.searchingKey(m.Queue), s.keys.incomingKey(m.Queue), s.keys.searchingDataKey(m.Queue)}
	args := []any{m.Attempt, reason, msOf(holdUntil)}
	for _, t := range m.TicketIDs {
		keys = append(keys, s.keys.ticketKey(m.Queue, t))
		args = append(args, t)
	}
	res, err := failMatchScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return domain.Match{}, fmt.Errorf("fail match %s: %w", m.ID, err)
	}
	stored, err := s.Match(ctx, m.Queue, m.ID)
	if err != nil {
		return domain.Match{}, err
	}
	if len(res) == 0 || (res[0] != "ok" && res[0] != string(domain.MatchFailed)) {
		return stored, domain.ErrStaleAttempt
	}
	return stored, nil
}

// EnsureAllocationGroup creates the queue's stream and its consumer group of
// allocators, if they do not exist yet.
func (s *Store) EnsureAllocationGroup(ctx context.Context, queue string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.allocStreamKey(queue), allocGroup, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create allocation group of %s: %w", queue, err)
	}
	return nil
}

// ReadAllocationJobs takes up to count new jobs from the queue's stream for
// consumer, waiting up to block for one to arrive.
func (s *Store) ReadAllocationJobs(ctx context.Context, queue, consumer string, count int, block time.Duration) ([]domain.AllocationJob, error) {
	var res []redis.XStream
	err := s.withGroup(ctx, queue, func() (err error) {
		res, err = s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: allocGroup, Consumer: consumer, Streams: []string{s.keys.allocStreamKey(queue), ">"},
			Count: int64(count), Block: block,
		}).Result()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read allocation jobs of %s: %w", queue, err)
	}
	var jobs []domain.AllocationJob
	for _, st := range res {
		jobs = append(jobs, toJobs(queue, st.Messages)...)
	}
	return jobs, nil
}

// ClaimStaleAllocationJobs takes over jobs that another consumer has held
// for longer than minIdle: its node died mid-allocation.
func (s *Store) ClaimStaleAllocationJobs(ctx context.Context, queue, consumer string, minIdle time.Duration, count int) ([]domain.AllocationJob, error) {
	var msgs []redis.XMessage
	err := s.withGroup(ctx, queue, func() (err error) {
		msgs, _, err = s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.keys.allocStreamKey(queue), Group: allocGroup, Consumer: consumer,
			MinIdle: minIdle, Start: "0-0", Count: int64(count),
		}).Result()
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim stale allocation jobs of %s: %w", queue, err)
	}
	return toJobs(queue, msgs), nil
}

// RenewAllocationJob restarts the idle time of a job that consumer holds
// and returns it with Received now, or reports false if the job has been
// idle for less than idleAtLeast: another consumer claimed it meanwhile (or
// it was acknowledged), and it is not this consumer's any more.
func (s *Store) RenewAllocationJob(ctx context.Context, job domain.AllocationJob, consumer string, idleAtLeast time.Duration) (domain.AllocationJob, bool, error) {
	var ids []string
	err := s.withGroup(ctx, job.Queue, func() (err error) {
		ids, err = s.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: s.keys.allocStreamKey(job.Queue), Group: allocGroup, Consumer: consumer,
			MinIdle: idleAtLeast, Messages: []string{job.StreamID},
		}).Result()
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return job, false, fmt.Errorf("renew allocation job of match %s: %w", job.MatchID, err)
	}
	job.Received = time.Now()
	return job, len(ids) == 1, nil
}

// PendingAllocationJobs counts the queue's allocation jobs handed to a
// worker and not yet acknowledged.
func (s *Store) PendingAllocationJobs(ctx context.Context, queue string) (int64, error) {
	var n int64
	err := s.withGroup(ctx, queue, func() error {
		p, err := s.rdb.XPending(ctx, s.keys.allocStreamKey(queue), allocGroup).Result()
		if err == nil {
			n = p.Count
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count pending allocation jobs of %s: %w", queue, err)
	}
	return n, nil
}

// withGroup runs a consumer-group command, recreating the group once if
// Redis lost it (restarted without persistence, or failed over to a replica
// that never had it).
func (s *Store) withGroup(ctx context.Context, queue string, cmd func() error) error {
	err := cmd()
	if err == nil || !redis.HasErrorPrefix(err, "NOGROUP") {
		return err
	}
	if gerr := s.EnsureAllocationGroup(ctx, queue); gerr != nil {
		return gerr
	}
	return cmd()
}

func toJobs(queue string, msgs []redis.XMessage) []domain.AllocationJob {
	jobs := make([]domain.AllocationJob, 0, len(msgs))
	now := time.Now()
	for _, m := range msgs {
		id, _ := m.Values["match"].(string)
		jobs = append(jobs, domain.AllocationJob{StreamID: m.ID, Queue: queue, MatchID: id, Received: now})
	}
	return jobs
}

// AckAllocationJobs marks finished jobs done, so they are not handed out
// again: one XACK per queue, in one pipeline.
func (s *Store) AckAllocationJobs(ctx context.Context, jobs []domain.AllocationJob) error {
	byQueue := make(map[string][]string)
	for _, j := range jobs {
		byQueue[j.Queue] = append(byQueue[j.Queue], j.StreamID)
	}
	pipe := s.rdb.Pipeline()
	for queue, ids := range byQueue {
		pipe.XAck(ctx, s.keys.allocStreamKey(queue), allocGroup, ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("ack %d allocation jobs: %w", len(jobs), err)
	}
	return nil
}

// AcquireLease takes or renews the queue's formation lease for holder.
// It reports whether holder holds the lease afterwards.
func (s *Store) AcquireLease(ctx context.Context, queue, holder string, ttl time.Duration) (bool, error) {
	n, err := acquireLeaseScript.Run(ctx, s.rdb, []string{s.keys.leaseKey(queue)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("acquire lease of %s: %w", queue, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up the queue's lease if holder holds it, so another
// node can take over without waiting for it to expire.
func (s *Store) ReleaseLease(ctx context.Context, queue, holder string) error {
	if err := compareDeleteScript.Run(ctx, s.rdb, []string{s.keys.leaseKey(queue)}, holder).Err(); err != nil {
		return fmt.Errorf("release lease of %s: %w", queue, err)
	}
	return nil
}
