package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

func runPlay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("play", "Connects, joins a queue and prints what happens until match.ready.", stderr)
	var c common
	c.flags(fs)
	queue := fs.String("queue", "default", "the queue to join (GET /v1/queues lists them)")
	skill := fs.Float64("skill", 0, "the player's rating, for a queue with a skill rule (0: none sent)")
	regions := fs.String("regions", "", "comma-separated acceptable regions, most preferred first (empty: all of the queue's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("play takes no arguments, only flags (did you mean -name %s?)", fs.Arg(0))
	}
	s, err := c.connect(ctx, stdout)
	if err != nil {
		return err
	}
	defer s.close()
	join := map[string]any{"queue": *queue}
	if *skill != 0 {
		join["skill"] = *skill
	}
	if *regions != "" {
		join["regions"] = strings.Split(*regions, ",")
	}
	joinID := ""
	for {
		var f frame
		var ok bool
		select {
		case f, ok = <-s.frames:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return s.closed()
		}
		if !c.raw {
			fmt.Fprintln(stdout, describe(f))
		}
		switch f.str("type") {
		case "welcome":
			if m := f.obj("state").obj("match"); m != nil {
				// The match this player was waiting for, delivered on
				// reconnecting: show it as it would have come.
				if !c.raw {
					fmt.Fprintln(stdout, describe(m))
				}
				return nil
			}
			if f.obj("state").obj("ticket") != nil {
				continue // queued already: wait for what comes
			}
			if joinID, err = s.send("queue.join", join); err != nil {
				return fmt.Errorf("send queue.join: %w", err)
			}
		case "reply":
			if f.str("id") == joinID && f["ok"] != true {
				return errors.New("queue.join refused")
			}
		case "match.ready":
			return nil
		case "match.failed":
			if f["requeued"] != true {
				return errors.New("the match failed and the ticket was not requeued")
			}
		case "queue.state":
			switch f.obj("ticket").str("status") {
			case "expired", "cancelled":
				return fmt.Errorf("the ticket ended: %s", f.obj("ticket").str("status"))
			}
		}
	}
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", "Connects and prints every event until stopped (Ctrl-C).", stderr)
	var c common
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("watch takes no arguments, only flags (did you mean -token %s?)", fs.Arg(0))
	}
	s, err := c.connect(ctx, stdout)
	if err != nil {
		return err
	}
	defer s.close()
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return s.closed()
			}
			if !c.raw {
				fmt.Fprintln(stdout, describe(f))
			}
		case <-ctx.Done():
			return nil // stopped by the user
		}
	}
}

// describe renders a frame as one readable line (or a few, for match.ready).
func describe(f frame) string {
	ts := time.Now().Format("15:04:05.000")
	typ := f.str("type")
	line := func(format string, a ...any) string { return ts + "  " + typ + "  " + fmt.Sprintf(format, a...) }
	switch typ {
	case "welcome":
		st := f.obj("state")
		var has []string
		for _, k := range []string{"ticket", "lobby", "match"} {
			if st.obj(k) != nil {
				has = append(has, k)
			}
		}
		held := "nothing held from before"
		if len(has) > 0 {
			held = "still holds: " + strings.Join(has, ", ")
		}
		return line("player %s on node %s; %s", f.str("playerId"), f.str("node"), held)
	case "reply":
		if f["ok"] == true {
			if t := f.obj("data").obj("ticket"); t != nil {
				wait := ""
				if ms, ok := t["estimatedWaitMs"].(float64); ok {
					wait = fmt.Sprintf(", estimated wait %.1fs", ms/1000)
				}
				return line("request %s ok: ticket %s in %s, %s%s", f.str("id"), t.str("ticketId"), t.str("queue"), t.str("status"), wait)
			}
			return line("request %s ok", f.str("id"))
		}
		e := f.obj("error")
		return line("request %s refused: %s: %s", f.str("id"), e.str("code"), e.str("message"))
	case "queue.state":
		t := f.obj("ticket")
		reason := ""
		if r := f.str("reason"); r != "" {
			reason = " (" + r + ")"
		}
		return line("ticket %s %s%s", t.str("ticketId"), t.str("status"), reason)
	case "match.found":
		return line("match %s in %s with %s", f.str("matchId"), f.str("queue"), names(f["players"]))
	case "match.ready":
		return line("match %s ready: party %s\n    regions (preference order): %v\n    invitationId: %s\n    networkDescriptor: %s",
			f.str("matchId"), f.str("partyId"), f["regions"], f.str("invitationId"), f.str("networkDescriptor"))
	case "match.failed":
		return line("match %s failed: %s, requeued: %v", f.str("matchId"), f.str("reason"), f["requeued"])
	case "lobby.state":
		l := f.obj("lobby")
		return line("lobby %s (code %s) %s, %d members", l.str("lobbyId"), l.str("code"), l.str("status"), len(asList(l["members"])))
	case "lobby.removed":
		return line("removed from lobby %s: %s", f.str("lobbyId"), f.str("reason"))
	case "lobby.chat":
		return line("%s: %s", f.obj("from").str("name"), f.str("text"))
	}
	return line("%v", map[string]any(f))
}

func asList(v any) []any { l, _ := v.([]any); return l }

// names lists the players' names of a match event.
func names(v any) string {
	var out []string
	for _, p := range asList(v) {
		if m, ok := p.(map[string]any); ok {
			n, _ := m["name"].(string)
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}
