#!/bin/bash
# baseline.sh: the load-test baseline of docs/benchmarks.md, on one machine.
#
#   cmd/lobbyload/baseline.sh [-r REDIS_URL] [-n PLAYERS] [-i IDLE] [-q] OUTDIR
#
# Builds lobbyd, lobbyload and echoref, then runs, writing one report per
# run into OUTDIR:
#   burst-<tier>-N      PLAYERS pre-connected players queue all at once (x3)
#   rate-<tier>-R       the same players queue at R players/s
#   echo-N, echo-rate-R the same generator against echoref, the bare gorilla
#                       reference server (x3, and at the same rates)
#   idle-<tier>         IDLE idle connections: lobbyd RSS and idle CPU
#   profile-redis.pprof a CPU profile of lobbyd during one burst on Redis
# Tiers: "embedded" (miniredis and the in-process fake PlayFab, lobbyd's
# defaults) and, with -r, "redis" (that Redis, and cmd/fakeplayfab as its
# own process at 0 ms, so lobbyd's CPU is lobbyd's alone, as against the
# real PlayFab; the Redis database is FLUSHDB'd before every run: point it
# at a scratch Redis). -q runs one burst and one rate per tier (a quick
# look).
#
# Each run prints lobbyd's CPU seconds during the queueing phase, from
# /proc. A process may hold at most `ulimit -n` sockets: PLAYERS and IDLE
# must stay below it (lobbyd and lobbyload each hold one per player).
set -u
redis="" players=16000 idle=19000 quick=""
while getopts r:n:i:q opt; do
	case $opt in
	r) redis=$OPTARG ;;
	n) players=$OPTARG ;;
	i) idle=$OPTARG ;;
	q) quick=1 ;;
	*) echo "usage: $0 [-r REDIS_URL] [-n PLAYERS] [-i IDLE] [-q] OUTDIR" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "usage: $0 [-r REDIS_URL] [-n PLAYERS] [-i IDLE] [-q] OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
bin=$(mktemp -d)
lobbyd_pid= fake_pid=
cleanup() {
	[ -n "$lobbyd_pid" ] && kill -TERM "$lobbyd_pid" 2>/dev/null && wait "$lobbyd_pid" 2>/dev/null
	[ -n "$fake_pid" ] && kill -TERM "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$bin"
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/lib.sh"
for c in lobbyd lobbyload echoref fakeplayfab; do
	go build -o "$bin/$c" "./cmd/$c" || exit 1
done

addr=127.0.0.1:18480 debug=127.0.0.1:18481 echo_addr=127.0.0.1:18482 fake_addr=127.0.0.1:18483

# start_lobbyd TIER: starts lobbyd on the tier's Redis, waits until it listens.
start_lobbyd() {
	local url="" playfab=()
	if [ "$1" = redis ]; then
		url=$redis
		redis-cli -u "$url" FLUSHDB >/dev/null || exit 1
		start_fake $fake_addr baseline-fake-key
		playfab=(LOBBYD_PLAYFAB_TITLE_ID=BASE LOBBYD_PLAYFAB_SECRET_KEY=baseline-fake-key LOBBYD_PLAYFAB_BASE_URL=http://$fake_addr)
	fi
	# Every simulated player comes from one address: per-address limits off.
	env "${playfab[@]}" LOBBYD_ADDR_HANDSHAKE_RATE=0 LOBBYD_MAX_CONNS_PER_ADDR=0 \
	LOBBYD_DEV_AUTH=true LOBBYD_LOG_LEVEL=warn LOBBYD_REDIS_URL="$url" LOBBYD_DEBUG_ADDR=$debug \
		"$bin/lobbyd" -addr $addr >"$bin/lobbyd.out" 2>"$out/lobbyd-$1.log" &
	lobbyd_pid=$!
	for _ in $(seq 100); do
		grep -q listening "$bin/lobbyd.out" 2>/dev/null && return
		kill -0 $lobbyd_pid 2>/dev/null || break
		sleep 0.1
	done
	echo "baseline: lobbyd did not start:" >&2
	cat "$out/lobbyd-$1.log" >&2
	exit 1
}

stop_lobbyd() {
	kill -TERM $lobbyd_pid && wait $lobbyd_pid
	lobbyd_pid=
	if [ -n "$fake_pid" ]; then
		kill -TERM $fake_pid && wait $fake_pid
		fake_pid=
	fi
}

# queue_run TIER NAME [lobbyload flags]: one pre-connected run on a fresh lobbyd.
queue_run() {
	local tier=$1 name=$2
	shift 2
	start_lobbyd "$tier"
	local rflag=()
	[ "$tier" = redis ] && rflag=(-redis-url "$redis")
	# lobbyload reports lobbyd's CPU per matched player (from /metrics) and,
	# on the redis tier, redis-server's (INFO cpu).
	"$bin/lobbyload" -url "http://$addr" -players "$players" -preconnect -sample-interval 1h -progress on "${rflag[@]}" "$@" \
		>"$out/$name.txt" 2>"$bin/progress" &
	local lp=$! c0 prof=
	until grep -q queueing "$bin/progress" 2>/dev/null || ! kill -0 $lp 2>/dev/null; do sleep 0.02; done
	c0=$(cpu $lobbyd_pid)
	if [ "$name" = burst-redis-1 ]; then
		curl -s -o "$out/profile-redis.pprof" "http://$debug/debug/pprof/profile?seconds=3" &
		prof=$!
	fi
	wait $lp
	echo "lobbyd CPU during the queueing phase: $(( ($(cpu $lobbyd_pid) - c0) * 1000 / hz )) ms" >>"$out/$name.txt"
	[ -n "$fake_pid" ] && echo "fakeplayfab CPU over the whole run: $(( $(cpu $fake_pid) * 1000 / hz )) ms" >>"$out/$name.txt"
	[ -n "$prof" ] && wait $prof
	stop_lobbyd
	echo "$name: $(grep -E '^throughput|^result|^lobbyd CPU|^redis CPU' "$out/$name.txt" | tr '\n' ' ')"
}

idle_run() {
	local tier=$1 c0 c1 rss1 rss2 n
	start_lobbyd "$tier"
	local before
	before=$(awk '/VmRSS/{print $2}' /proc/$lobbyd_pid/status)
	connect_idle $addr "$idle" "$out/idle-$tier.report"
	local lp=$idle_pid n=$idle_seen
	rss1=$(awk '/VmRSS/{print $2}' /proc/$lobbyd_pid/status)
	c0=$(cpu $lobbyd_pid)
	sleep 30
	c1=$(cpu $lobbyd_pid)
	rss2=$(awk '/VmRSS/{print $2}' /proc/$lobbyd_pid/status)
	{
		echo "idle connections: $n of $idle"
		echo "lobbyd RSS: $before kB before, $rss1 kB 10 s after the last connect, $rss2 kB 30 s later"
		echo "lobbyd CPU over those 30 s: $(( (c1 - c0) * 1000 / hz )) ms"
		curl -s "http://$addr/metrics" | grep -E '^go_(goroutines|memstats_heap_inuse_bytes|memstats_stack_inuse_bytes) '
	} >"$out/idle-$tier.txt"
	wait $lp
	stop_lobbyd
	echo "idle-$tier: $(head -3 "$out/idle-$tier.txt" | tr '\n' ' ')"
}

tiers=embedded
[ -n "$redis" ] && tiers="redis embedded"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null)"
	echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
	echo "go: $(go version)"
	[ -n "$redis" ] && echo "redis: $(redis-cli -u "$redis" INFO server | grep -E '^redis_version')"
	echo "players: $players, idle: $idle"
} >"$out/machine.txt"
cat "$out/machine.txt"

for tier in $tiers; do
	if [ -n "$quick" ]; then
		queue_run "$tier" "burst-$tier-1"
		queue_run "$tier" "rate-$tier-1000" -rate 1000
		continue
	fi
	for i in 1 2 3; do queue_run "$tier" "burst-$tier-$i"; done
	for rate in 500 1000 2000 3000 4000; do queue_run "$tier" "rate-$tier-$rate" -rate $rate; done
done

"$bin/echoref" -addr $echo_addr >"$out/echoref.log" 2>&1 &
echo_pid=$!
sleep 0.5
runs="1 2 3" rates="1000 2000 3000 10000"
[ -n "$quick" ] && runs=1 rates=1000
for i in $runs; do
	"$bin/lobbyload" -url "http://$echo_addr" -players "$players" -preconnect -progress off >"$out/echo-$i.txt"
	echo "echo-$i: $(grep -E '^throughput' "$out/echo-$i.txt")"
done
for rate in $rates; do
	"$bin/lobbyload" -url "http://$echo_addr" -players "$players" -preconnect -rate $rate -progress off >"$out/echo-rate-$rate.txt"
	echo "echo-rate-$rate: $(grep -E '^throughput' "$out/echo-rate-$rate.txt")"
done
kill -TERM $echo_pid
wait $echo_pid

for tier in $tiers; do idle_run "$tier"; done
