# lib.sh: what baseline.sh and ab.sh share; sourced, with $bin holding the
# built lobbyload.

# connect_idle ADDR N REPORT: starts lobbyload holding N idle connections
# to the lobbyd at ADDR for 90 s (its pid in idle_pid, its report in
# REPORT) and returns once lobbyd counts them all (idle_seen: what it last
# counted; at most 2 minutes), and 10 s more for the connect burst to
# settle.
connect_idle() {
	"$bin/lobbyload" -url "http://$1" -players "$2" -connect-only -duration 90s \
		-source-ips 127.0.0.1-127.0.0.8 -progress off >"$3" 2>&1 &
	idle_pid=$!
	idle_seen=0
	for _ in $(seq 600); do
		idle_seen=$(curl -s "http://$1/metrics" | awk '/^lobbyd_connections /{print $2}')
		[ "$idle_seen" = "$2" ] && break
		sleep 0.2
	done
	sleep 10
}

# cpu PID: the process's user+system CPU, in ticks of 1/hz seconds.
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# start_fake ADDR KEY: starts cmd/fakeplayfab on ADDR accepting the secret
# KEY (a throwaway of the run, like the fake), its pid in fake_pid, and
# returns once it answers (at most 5 s).
start_fake() {
	"$bin/fakeplayfab" -addr "$1" -log-level warn -secret-key "$2" >/dev/null 2>&1 &
	fake_pid=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://$1/" && break
		sleep 0.1
	done
}
