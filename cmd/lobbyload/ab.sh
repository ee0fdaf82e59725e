#!/bin/bash
# ab.sh: interleaved A/B load runs of two lobbyd binaries, on one machine.
#
#   cmd/lobbyload/ab.sh -r REDIS_URL -a LOBBYD_A -b LOBBYD_B [-n PLAYERS] [-k ROUNDS] [-i IDLE] OUTDIR
#
# Build the two binaries first (for example `git worktree add /tmp/a REV &&
# go -C /tmp/a build -o /tmp/lobbyd-a ./cmd/lobbyd`). ab.sh builds
# lobbyload, fakeplayfab and echoref from this checkout and runs, writing
# one lobbyload report per run into OUTDIR and a summary line per run to
# OUTDIR/summary.txt:
#   burst-{a,b}-K   PLAYERS (default 8,000) pre-connected players queue at
#                   once, A then B, ROUNDS times (default 3), with an
#                   echoref burst of as many players after each pair
#   rate-R-{a,b}    2·PLAYERS players queue at R = 2,000, 3,000 and
#                   4,000 players/s
#   slow-{a,b}-K    300 players at 10 players/s, ROUNDS times
#   idle-{a,b}      IDLE (default 19,000, 0: skipped) idle connections:
#                   RSS per connection, goroutines, heap and stacks, and
#                   lobbyd's CPU over 30 s of idling
# Every lobbyd runs on REDIS_URL (FLUSHDB'd before each run: use a scratch
# database) with cmd/fakeplayfab as a process of its own at 0 ms, dev auth
# on and per-address limits off. Each report gives lobbyd's and Redis's CPU
# per matched player (see lobbyload -redis-url); the summary adds lobbyd's
# read and write system calls per player from /proc (from the barrier to
# lobbyload's exit, goodbyes included).
set -u
redis="" a="" b="" players=8000 rounds=3 idle=19000
usage() { echo "usage: $0 -r REDIS_URL -a LOBBYD_A -b LOBBYD_B [-n PLAYERS] [-k ROUNDS] [-i IDLE] OUTDIR" >&2; exit 2; }
while getopts r:a:b:n:k:i: opt; do
	case $opt in
	r) redis=$OPTARG ;;
	a) a=$OPTARG ;;
	b) b=$OPTARG ;;
	n) players=$OPTARG ;;
	k) rounds=$OPTARG ;;
	i) idle=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] && [ -n "$redis" ] && [ -x "$a" ] && [ -x "$b" ] || usage
out=$1
mkdir -p "$out"
bin=$(mktemp -d)
lobbyd_pid= fake_pid= echo_pid=
stop() { [ -n "$1" ] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
cleanup() {
	stop "$lobbyd_pid"
	stop "$fake_pid"
	stop "$echo_pid"
	rm -rf "$bin"
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/lib.sh"
for c in lobbyload fakeplayfab echoref; do
	go build -o "$bin/$c" "./cmd/$c" || exit 1
done
addr=127.0.0.1:18580 fake_addr=127.0.0.1:18583 echo_addr=127.0.0.1:18582

# start LOBBYD: a fresh Redis database, the fake and lobbyd, until it listens.
start() {
	redis-cli -u "$redis" FLUSHDB >/dev/null || exit 1
	start_fake $fake_addr ab-fake-key
	LOBBYD_PLAYFAB_TITLE_ID=AB LOBBYD_PLAYFAB_SECRET_KEY=ab-fake-key LOBBYD_PLAYFAB_BASE_URL=http://$fake_addr \
		LOBBYD_ADDR_HANDSHAKE_RATE=0 LOBBYD_MAX_CONNS_PER_ADDR=0 LOBBYD_DEV_AUTH=true LOBBYD_LOG_LEVEL=warn \
		LOBBYD_REDIS_URL="$redis" "$1" -addr $addr >"$bin/lobbyd.out" 2>>"$out/lobbyd.log" &
	lobbyd_pid=$!
	for _ in $(seq 100); do
		grep -q listening "$bin/lobbyd.out" 2>/dev/null && return
		sleep 0.1
	done
	echo "ab: lobbyd $1 did not start" >&2
	exit 1
}

finish() {
	stop "$lobbyd_pid"
	stop "$fake_pid"
	lobbyd_pid= fake_pid=
}

syscalls() { awk '/syscr/{r=$2}/syscw/{w=$2}END{print r, w}' "/proc/$1/io"; }

# queue NAME LOBBYD N [lobbyload flags]: one pre-connected run.
queue() {
	local name=$1 lobbyd=$2 n=$3
	shift 3
	start "$lobbyd"
	"$bin/lobbyload" -url "http://$addr" -players "$n" -preconnect -sample-interval 1h -progress on -redis-url "$redis" "$@" \
		>"$out/$name.txt" 2>"$bin/progress" &
	local lp=$! r0 w0 r1 w1
	until grep -q queueing "$bin/progress" 2>/dev/null || ! kill -0 $lp 2>/dev/null; do sleep 0.01; done
	read -r r0 w0 < <(syscalls $lobbyd_pid)
	wait $lp
	read -r r1 w1 < <(syscalls $lobbyd_pid)
	finish
	echo "lobbyd syscalls per player: $(( (r1 - r0) / n )) reads, $(( (w1 - w0) / n )) writes" >>"$out/$name.txt"
	echo "$name: $(grep -E '^throughput|^lobbyd CPU|^redis CPU|queue.join→match.ready|^lobbyd syscalls|^result' "$out/$name.txt" | tr -s ' ' | tr '\n' '|')" >>"$out/summary.txt"
}

idle_run() {
	local name=$1 before rss
	start "$2"
	before=$(awk '/VmRSS/{print $2}' /proc/$lobbyd_pid/status)
	connect_idle $addr "$idle" "$out/$name.txt"
	rss=$(awk '/VmRSS/{print $2}' /proc/$lobbyd_pid/status)
	local c0 c1
	c0=$(cpu $lobbyd_pid)
	sleep 30
	c1=$(cpu $lobbyd_pid)
	echo "$name: $idle_seen connections, RSS $before kB before, $rss kB with them: $(( (rss - before) * 1024 / idle )) bytes each; CPU over 30 s idle: $(( (c1 - c0) * 1000 / hz )) ms; $(curl -s "http://$addr/metrics" | grep -E '^go_(goroutines|memstats_heap_inuse_bytes|memstats_stack_inuse_bytes) ' | tr '\n' ' ')" >>"$out/summary.txt"
	stop $idle_pid
	finish
}

{
	echo "date: $(date -u +%FT%TZ)"
	echo "a: $a"
	echo "b: $b"
	echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
	echo "redis: $(redis-cli -u "$redis" INFO server | grep -E '^redis_version' | tr -d '\r')"
} >>"$out/summary.txt"
for k in $(seq "$rounds"); do
	queue "burst-a-$k" "$a" "$players"
	queue "burst-b-$k" "$b" "$players"
	"$bin/echoref" -addr $echo_addr >/dev/null 2>&1 &
	echo_pid=$!
	sleep 0.3
	"$bin/lobbyload" -url "http://$echo_addr" -players "$players" -preconnect -progress off >"$out/echo-$k.txt"
	stop $echo_pid
	echo_pid=
	echo "echo-$k: $(grep -E '^throughput' "$out/echo-$k.txt" | tr -s ' ')" >>"$out/summary.txt"
done
for rate in 2000 3000 4000; do
	queue "rate-$rate-a" "$a" $((2 * players)) -rate $rate
	queue "rate-$rate-b" "$b" $((2 * players)) -rate $rate
done
for k in $(seq "$rounds"); do
	queue "slow-a-$k" "$a" 300 -rate 10
	queue "slow-b-$k" "$b" 300 -rate 10
done
if [ "$idle" -gt 0 ]; then
	idle_run idle-a "$a"
	idle_run idle-b "$b"
fi
cat "$out/summary.txt"
