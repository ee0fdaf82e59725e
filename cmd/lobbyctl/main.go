// Command lobbyctl is a small command-line client of lobbyd, for trying it
// without a game: get a development token, queue and wait for a match, or
// watch a player's events.
//
//	lobbyctl token alice                 # prints a token (needs dev auth)
//	lobbyctl play -queue default         # connects, queues, prints events until match.ready
//	lobbyctl watch -token "$T"           # prints every event of that player until stopped
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lobbyctl:", err)
		os.Exit(1)
	}
}

const usage = `Usage: lobbyctl <command> [flags]

Commands:
  token NAME   get a development token for a new player named NAME (lobbyd
               with LOBBYD_DEV_AUTH, as make run starts it); prints the token,
               and the player id on stderr
  play         connect, join a queue, print what happens until match.ready
               (exit 0), or a final match.failed or a closed socket (exit 1)
  watch        connect and print every event until stopped (Ctrl-C)

Run "lobbyctl <command> -h" for a command's flags.
`

// run is main with its inputs and outputs passed in, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "token":
		return runToken(ctx, args[1:], stdout, stderr)
	case "play":
		return runPlay(ctx, args[1:], stdout, stderr)
	case "watch":
		return runWatch(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
