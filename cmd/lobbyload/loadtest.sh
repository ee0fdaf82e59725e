#!/bin/sh
# loadtest.sh: build lobbyd and lobbyload, start lobbyd on a free port with
# dev auth (embedded Redis, in-process fake PlayFab), run lobbyload against
# it, stop lobbyd, and exit with lobbyload's status. Arguments are passed to
# lobbyload (default: 4000 players at once, a quarter in lobbies of 2).
#   cmd/lobbyload/loadtest.sh -players 2000 -html report.html
set -eu
GO=${GO:-go}
dir=$(mktemp -d)
lobbyd_pid=
cleanup() {
	if [ -n "$lobbyd_pid" ]; then
		kill -TERM "$lobbyd_pid" 2>/dev/null || true
		wait "$lobbyd_pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

$GO build -o "$dir/lobbyd" ./cmd/lobbyd
$GO build -o "$dir/lobbyload" ./cmd/lobbyload

mkfifo "$dir/out"
# Every simulated player comes from one address: the per-address limits
# would count them all as one client.
LOBBYD_ADDR_HANDSHAKE_RATE=0 LOBBYD_MAX_CONNS_PER_ADDR=0 \
	LOBBYD_DEV_AUTH=true LOBBYD_LOG_LEVEL=warn "$dir/lobbyd" -addr 127.0.0.1:0 >"$dir/out" 2>"$dir/lobbyd.log" &
lobbyd_pid=$!
# The first stdout line says where it listens; keep draining the rest.
exec 3<"$dir/out"
if ! read -r line <&3; then
	echo "loadtest: lobbyd did not start:" >&2
	cat "$dir/lobbyd.log" >&2
	exit 1
fi
cat <&3 >/dev/null &
url=${line#lobbyd listening on }

if [ $# -eq 0 ]; then
	set -- -players 4000 -rate 0 -lobby-share 0.25 -lobby-size 2 -duration 2m
fi
status=0
"$dir/lobbyload" -url "$url" "$@" || status=$?
if [ "$status" -ne 0 ]; then
	echo "loadtest: lobbyload failed (exit $status); lobbyd's log:" >&2
	tail -n 40 "$dir/lobbyd.log" >&2
fi
exit "$status"
