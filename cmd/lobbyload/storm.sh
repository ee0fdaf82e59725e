#!/bin/bash
# storm.sh: the reconnect storm of issue 17, on one machine.
#
#   cmd/lobbyload/storm.sh -r REDIS_URL [-n PLAYERS] [-R RATE] [-k KILL_AFTER] [-w WINDOW]
#                          [-d DURATION] [-a ALLOCATION_DEADLINE] [-m MAX_CONNS] [-l LOBBY_SHARE] [-c] OUTDIR
#
# Builds lobbyd, lobbyload and fakeplayfab from this checkout into a temp
# dir, FLUSHDBs REDIS_URL (use a scratch database: it is emptied before and
# after), starts cmd/fakeplayfab and 3 lobbyd nodes on loopback ports
# (dev auth, one shared JWT secret, per-address limits off, each with its
# open-files limit raised to its hard limit), then runs lobbyload against
# the 3 URLs with -procs 3: PLAYERS players (default 45,000, or fewer when
# two nodes cannot hold them: see below) connect first (-preconnect), then
# queue at RATE players/s (default 1,000), a share LOBBY_SHARE (default
# 0.2) of them in lobbies of 2. KILL_AFTER seconds after the barrier
# (default: 40% of the queueing time, PLAYERS/RATE) some players are
# matched (holding their sockets), some queued, some in lobbies and many
# not yet queued: node 3 is killed with kill -9. Its players reconnect
# (full-jitter backoff) to one of the other two at random
# (-reconnect-to random) and resume from welcome; lobbyload checks that
# every player gets one match.ready, that every lost socket got a welcome
# again, and measures the way back (its report's "back" figures).
#
# Just before the kill the script notes what there is to lose (lobbyload's
# progress line: connected, searching, matched; Redis: searching tickets,
# lobbies; which node leads the queue) and what the survivors and Redis
# spend per second in the 5 s before it. During WINDOW seconds from the
# kill (default 30) it reads, about every second, the surviving nodes' CPU
# (/proc/PID/stat: the counter of lobbyd's process_cpu_seconds_total,
# readable however busy the node is), RSS and connections (/metrics), and
# Redis's CPU (INFO cpu) and RSS, into OUTDIR/window.tsv (each reading with
# its time since the kill). lobbyload runs for at most DURATION (default
# 5m: a match whose allocation job the dead node held is claimed after 2 x
# ALLOCATION_DEADLINE + 15 s, 75 s by default). OUTDIR/summary.txt has the
# figures, OUTDIR/storm.txt, storm.json and storm.html lobbyload's
# reports, OUTDIR/progress.txt its progress lines, OUTDIR/lobbyd-N.log the
# nodes' logs. Every process it started is stopped (by pid) on exit. Exits
# with lobbyload's status.
#
# A lobbyd node holds at most its open-files limit less 512 sockets (its
# auto LOBBYD_MAX_CONNS; -m sets it) and past that answers handshakes 503.
# After the kill the two survivors must hold every player: when 2 x that
# cap is below PLAYERS the default PLAYERS is lowered to fit (said in the
# summary); an explicit -n is run as given (the players who find no room
# keep retrying and count as never back).
#
# -c plays the storm alone: the players only connect and hold their
# sockets (lobbyload -connect-only, no queueing), node 3 is killed
# KILL_AFTER (default 5) seconds after every player is connected, and the
# window's CPU is the reconnections' alone; lobbyload ends at DURATION
# (default then 90s).
#
# A small version for a quick look: storm.sh -r URL -n 3000 -R 300 OUTDIR.
set -u
redis="" players="" rate=1000 kill_after="" window=30 duration="" deadline="" max_conns="" lobby_share=0.2 idle=""
usage() {
	echo "usage: $0 -r REDIS_URL [-n PLAYERS] [-R RATE] [-k KILL_AFTER] [-w WINDOW] [-d DURATION] [-a ALLOCATION_DEADLINE] [-m MAX_CONNS] [-l LOBBY_SHARE] [-c] OUTDIR" >&2
	exit 2
}
while getopts r:n:R:k:w:d:a:m:l:c opt; do
	case $opt in
	r) redis=$OPTARG ;;
	n) players=$OPTARG ;;
	R) rate=$OPTARG ;;
	k) kill_after=$OPTARG ;;
	w) window=$OPTARG ;;
	d) duration=$OPTARG ;;
	a) deadline=$OPTARG ;;
	m) max_conns=$OPTARG ;;
	l) lobby_share=$OPTARG ;;
	c) idle=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] && [ -n "$redis" ] || usage
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$(mktemp -d)
node_pids=() fake_pid= load_pid=
stop() { [ -n "$1" ] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null; }
cleanup() {
	stop "$load_pid" # lobbyload stops its own workers on SIGTERM
	for p in "${node_pids[@]}"; do stop "$p"; done
	stop "$fake_pid"
	redis-cli -u "$redis" FLUSHDB >/dev/null 2>&1
	rm -rf "$bin"
}
trap cleanup EXIT INT TERM
. "$(dirname "$0")/lib.sh"
for c in lobbyd lobbyload fakeplayfab; do
	go build -o "$bin/$c" "./cmd/$c" || exit 1
done
redis-cli -u "$redis" FLUSHDB >/dev/null || { echo "storm: cannot FLUSHDB $redis" >&2; exit 1; }

addrs=(127.0.0.1:18680 127.0.0.1:18681 127.0.0.1:18682)
fake_addr=127.0.0.1:18683
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
now() { date +%s.%N; }
# since T: seconds since T, 2 decimals.
since() { echo "$(now) - $1" | bc | xargs printf '%.2f'; }
metric() { curl -s --max-time 2 "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2; exit}'; }
# metric_sum NAME ADDR...: a metric summed over its series and the nodes.
metric_sum() {
	local name=$1 a
	shift
	for a in "$@"; do curl -s --max-time 2 "http://$a/metrics"; done |
		awk -v m="$name" 'index($1, m "{") == 1 || $1 == m {s += $NF} END {printf "%.0f", s}'
}
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null; }
redis_cpu() { redis-cli -u "$redis" INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{printf "%.3f", s}'; }
redis_rss() { redis-cli -u "$redis" INFO memory | tr -d '\r' | awk -F: '/^used_memory_rss:/{print int($2/1024)}'; }
host_busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8)/100; exit}' /proc/stat; }
pid_cpu() { echo "$(cpu "$1") / $hz" | bc -l | xargs printf '%.2f'; }
# cpu_s PID: the process's user+system CPU in seconds, from /proc: what
# lobbyd's process_cpu_seconds_total says too, and readable however busy
# the node is.
cpu_s() { echo "$(cpu "$1") / $hz" | bc -l; }
# count_keys PATTERN: the keys of the database matching it (SCAN, 10,000
# a step).
count_keys() {
	local cursor=0 n=0 reply
	while :; do
		reply=$(redis-cli -u "$redis" SCAN "$cursor" MATCH "$1" COUNT 10000)
		cursor=$(head -1 <<<"$reply")
		n=$((n + $(tail -n +2 <<<"$reply" | grep -c .)))
		[ "$cursor" = 0 ] && break
	done
	echo $n
}

# Each node gets the highest open-files limit it can: the hard limit, or
# more where this shell may raise it (CAP_SYS_RESOURCE).
start_node() {
	local i=$1 extra=()
	[ -n "$deadline" ] && extra+=(LOBBYD_ALLOCATION_DEADLINE="$deadline")
	[ -n "$max_conns" ] && extra+=(LOBBYD_MAX_CONNS="$max_conns")
	(
		ulimit -Hn 1048576 2>/dev/null
		ulimit -n "$(ulimit -Hn)" 2>/dev/null
		exec env "${extra[@]}" LOBBYD_REDIS_URL="$redis" LOBBYD_JWT_SECRET="$secret" LOBBYD_NODE_ID="storm-$((i + 1))" \
			LOBBYD_PLAYFAB_TITLE_ID=STORM LOBBYD_PLAYFAB_SECRET_KEY=storm-fake-key LOBBYD_PLAYFAB_BASE_URL="http://$fake_addr" \
			LOBBYD_ADDR_HANDSHAKE_RATE=0 LOBBYD_MAX_CONNS_PER_ADDR=0 LOBBYD_DEV_AUTH=true LOBBYD_LOG_LEVEL=warn \
			"$bin/lobbyd" -addr "${addrs[$i]}"
	) >"$bin/lobbyd-$i.out" 2>"$out/lobbyd-$((i + 1)).log" &
	node_pids[i]=$!
	for _ in $(seq 100); do
		grep -q listening "$bin/lobbyd-$i.out" 2>/dev/null && return
		kill -0 "${node_pids[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "storm: lobbyd $((i + 1)) did not start:" >&2
	cat "$out/lobbyd-$((i + 1)).log" >&2
	exit 1
}

start_fake $fake_addr storm-fake-key
for i in 0 1 2; do start_node $i; done
nofile=$(awk '/Max open files/{print $4}' "/proc/${node_pids[0]}/limits")
cap=${max_conns:-$((nofile - 512))}
note=""
if [ -z "$players" ]; then
	players=45000
	if [ $((2 * cap)) -lt $players ]; then
		# Two survivors at their cap, less a little for the randomness of
		# who reconnects where (the 503 of a full node sends a player on).
		players=$(((2 * cap - 400) / 100 * 100))
		note="PLAYERS lowered from 45000 to $players: the two surviving nodes hold at most 2 x $cap sockets (open-files limit $nofile less lobbyd's 512)"
	fi
fi
urls="http://${addrs[0]},http://${addrs[1]},http://${addrs[2]}"
load_cmd=("$bin/lobbyload" -url "$urls" -procs 3 -players "$players" -reconnect-to random -source-ips 127.0.0.1-127.0.0.8
	-redis-url "$redis" -progress on -label storm -json-file "$out/storm.json" -html "$out/storm.html")
if [ -n "$idle" ]; then
	: "${kill_after:=5}" "${duration:=90s}"
	load_cmd+=(-connect-only -duration "$duration")
	scenario="connect-only (every player connects and holds its socket; no queueing)"
else
	[ -z "$kill_after" ] && kill_after=$(echo "$players / $rate * 0.4" | bc -l | xargs printf '%.0f')
	: "${duration:=5m}"
	load_cmd+=(-preconnect -rate "$rate" -lobby-share "$lobby_share" -lobby-size 2 -duration "$duration")
	scenario="rate: $rate/s, lobby share: $lobby_share (lobbies of 2)"
fi

{
	echo "date: $(date -u +%FT%TZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "cpus: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
	echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "go: $(go version)"
	echo "redis: $(redis-cli -u "$redis" INFO server | tr -d '\r' | grep -E '^redis_version')"
	echo "load before: $(uptime)"
	echo "open-files limit per process: $nofile (hard $(ulimit -Hn)); lobbyd's cap per node: $cap sockets"
	[ -n "$note" ] && echo "note: $note"
	echo "players: $players, $scenario, kill: node 3 (${addrs[2]}) $kill_after s after the barrier"
	echo "allocation deadline: ${deadline:-30s, lobbyd default}"
	echo "lobbyload: LOBBYLOAD_JWT_SECRET=... lobbyload ${load_cmd[*]:1}"
} >"$out/summary.txt"
cat "$out/summary.txt"

t0=$(now)
LOBBYLOAD_JWT_SECRET=$secret "${load_cmd[@]}" >"$out/storm.txt" 2>"$out/progress.txt" &
load_pid=$!
# The barrier: lobbyload's line after its connect phase, or with -c every
# player counted by the nodes.
connected() { echo $(($(metric "${addrs[0]}" lobbyd_connections) + $(metric "${addrs[1]}" lobbyd_connections) + $(metric "${addrs[2]}" lobbyd_connections))); }
until if [ -n "$idle" ]; then [ "$(connected 2>/dev/null)" = "$players" ]; else grep -q queueing "$out/progress.txt" 2>/dev/null; fi; do
	kill -0 $load_pid 2>/dev/null || { echo "storm: lobbyload ended before the barrier" >&2; cat "$out/progress.txt" >&2; exit 1; }
	sleep 0.05
done
t_barrier=$(now)
if [ -n "$idle" ]; then
	echo "barrier: the nodes hold all $players players, $(since "$t0") s after lobbyload started" | tee -a "$out/summary.txt"
else
	echo "barrier: $(grep queueing "$out/progress.txt" | tail -1 | sed 's/^ *//') ($(since "$t0") s after lobbyload started)" | tee -a "$out/summary.txt"
fi
for i in 0 1 2; do
	echo "node $((i + 1)) after the connect phase: RSS $(rss_kb "${node_pids[$i]}") kB, $(metric "${addrs[$i]}" lobbyd_connections) connections" | tee -a "$out/summary.txt"
done
# The 5 s before the kill give what the survivors and Redis spend on the
# queueing alone, at this rate; the window's figures less that are the
# storm's.
base=5
sleep "$(echo "$kill_after - $base" | bc | awk '{print ($1 > 0) ? $1 : 0}')"
kill -0 $load_pid 2>/dev/null || { echo "storm: lobbyload ended before the kill" >&2; exit 1; }
# What there is to lose: lobbies and searching tickets in Redis, and who
# leads the queue.
lobbies=$(count_keys '{l:*}')
leader=none
for i in 0 1 2; do
	[ "$(metric "${addrs[$i]}" 'lobbyd_queue_leader{queue="default"}')" = 1 ] && leader=$((i + 1))
done
p1=${node_pids[0]} p2=${node_pids[1]}
c1_b=$(cpu_s "$p1") c2_b=$(cpu_s "$p2") r_b=$(redis_cpu) h_b=$(host_busy) t_b=$(now)
sleep "$(echo "$t_barrier + $kill_after - $(now)" | bc | awk '{print ($1 > 1) ? $1 : 1}')"
queued=$(redis-cli -u "$redis" ZCARD '{q:default}:searching')
at_kill=$(grep -E 'connected [0-9]+  searching' "$out/progress.txt" | tail -1 | sed 's/^ *//')
c1_0=$(cpu_s "$p1") c2_0=$(cpu_s "$p2") r_0=$(redis_cpu) h_0=$(host_busy)
base=$(echo "$(now) - $t_b" | bc)
victim=${node_pids[2]}
kill -9 "$victim"
t_kill=$(now)
wait "$victim" 2>/dev/null
node_pids[2]=
{
	echo "kill -9 node 3 (pid $victim) $(since "$t_barrier") s after the barrier"
	echo "  lobbyload's last progress line before it: $at_kill"
	echo "  Redis: $queued tickets searching ({q:default}:searching) just before the kill, $lobbies lobbies ({l:*}) $(printf '%.0f' "$base") s before it; the queue's leader: node $leader"
	echo "  the $(printf '%.1f' "$base") s before the kill (the run before the storm), per second: node 1 $(echo "($c1_0 - $c1_b) / $base" | bc -l | xargs printf '%.2f') s of CPU, node 2 $(echo "($c2_0 - $c2_b) / $base" | bc -l | xargs printf '%.2f') s, Redis $(echo "($r_0 - $r_b) / $base" | bc -l | xargs printf '%.2f') s, whole machine $(echo "($h_0 - $h_b) / $base" | bc -l | xargs printf '%.2f') s"
} | tee -a "$out/summary.txt"

# The window: about every second, the survivors and Redis, with the time
# since the kill each reading was taken (a busy machine delays them).
printf 'sec\tn1_cpu_s\tn2_cpu_s\tredis_cpu_s\tn1_conns\tn2_conns\tn1_rss_kb\tn2_rss_kb\tredis_rss_kb\thost_busy_s\n' >"$out/window.tsv"
back_at="" s=0
while [ "$(echo "$(now) - $t_kill < $window" | bc)" = 1 ]; do
	s=$((s + 1))
	sleep "$(echo "$t_kill + $s - $(now)" | bc | awk '{print ($1 > 0) ? $1 : 0}')"
	el=$(since "$t_kill")
	k1=$(metric "${addrs[0]}" lobbyd_connections) k2=$(metric "${addrs[1]}" lobbyd_connections)
	printf '%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%.2f\n' "$el" "$(echo "$(cpu_s "$p1") - $c1_0" | bc -l)" "$(echo "$(cpu_s "$p2") - $c2_0" | bc -l)" \
		"$(echo "$(redis_cpu) - $r_0" | bc)" "${k1:--}" "${k2:--}" "$(rss_kb "$p1")" "$(rss_kb "$p2")" "$(redis_rss)" \
		"$(echo "$(host_busy) - $h_0" | bc)" >>"$out/window.tsv"
	if [ -z "$back_at" ] && [ -n "$k1" ] && [ -n "$k2" ] && [ $((${k1%.*} + ${k2%.*})) -ge "$players" ]; then
		back_at=$el
	fi
done
last=$(tail -1 "$out/window.tsv")
{
	echo "window: $(echo "$last" | cut -f1) s from the kill (readings about every second in window.tsv)"
	echo "$last" | awk -F'\t' '{ w = $1
		printf "  node 1 CPU %.2f s (%.0f%% of a core), node 2 CPU %.2f s (%.0f%%), Redis CPU %.2f s (%.0f%%), whole machine %.2f s (%.0f%% of one core; it has %d)\n",
			$2, 100*$2/w, $3, 100*$3/w, $4, 100*$4/w, $10, 100*$10/w, '"$(nproc)"' }'
	awk -F'\t' 'NR > 1 {for (i = 2; i <= 4; i++) {d = ($i - p[i]) / ($1 - t); if (d > m[i]) {m[i] = d; at[i] = $1}; p[i] = $i}; t = $1}
		END {printf "  busiest reading: node 1 %.2f cores (at %.1f s), node 2 %.2f cores (at %.1f s), Redis %.2f cores (at %.1f s)\n", m[2], at[2], m[3], at[3], m[4], at[4]}' "$out/window.tsv"
	echo "  RSS at the end of the window: node 1 $(rss_kb "$p1") kB (peak $(hwm_kb "$p1") kB), node 2 $(rss_kb "$p2") kB (peak $(hwm_kb "$p2") kB), Redis $(redis_rss) kB"
	if [ -n "$back_at" ]; then
		echo "  the survivors held all $players players (lobbyd_connections) at the reading $back_at s after the kill"
	else
		echo "  the survivors never held all $players players in the window: $(echo "$last" | cut -f5,6 | tr '\t' '+') at its end"
	fi
} | tee -a "$out/summary.txt"

wait $load_pid
rc=$?
load_pid=
{
	echo "lobbyload exited $rc, $(since "$t0") s after it started"
	grep -E '^(connected|matched|failed|lost|lobbies|sockets lost|match.ready again|back after|all back|last back|throughput|lobbyd CPU|redis CPU|result)' "$out/storm.txt"
	sed -n '/^loss→welcome/,/^$/p;/^reconnections\/s/,/^$/p' "$out/storm.txt"
	grep -E '^preconnected:|^queue.join→match.ready' "$out/storm.txt"
	for i in 0 1; do
		echo "node $((i + 1)): CPU over the whole run $(pid_cpu "${node_pids[$i]}") s, peak RSS $(hwm_kb "${node_pids[$i]}") kB"
	done
	echo "survivors' counters: $(metric_sum lobbyd_allocation_jobs_claimed_total "${addrs[0]}" "${addrs[1]}") allocation jobs claimed from a dead node," \
		"$(metric_sum lobbyd_match_ready_redelivered_total "${addrs[0]}" "${addrs[1]}") match.ready redelivered," \
		"$(metric_sum lobbyd_handshake_failures_total "${addrs[0]}" "${addrs[1]}") handshakes refused"
	for i in 0 1; do
		echo "node $((i + 1)) handshakes refused, by reason: $(curl -s --max-time 2 "http://${addrs[$i]}/metrics" | grep '^lobbyd_handshake_failures_total{' | tr '\n' ' ')"
	done
	echo "fakeplayfab CPU over the whole run: $(pid_cpu "$fake_pid") s"
	echo "load after: $(uptime)"
} | tee -a "$out/summary.txt"
exit $rc
