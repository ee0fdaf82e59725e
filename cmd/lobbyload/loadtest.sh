#!/bin/sh
# loadtest.sh: build lobbyd and lobbyload, start lobbyd on a free port with
# dev auth (embedded Redis, in-process fake PlayFab), run lobbyload against
# it, stop lobbyd, and exit with lobbyload's status. The default scenario is
# 4000 players at once, a quarter in lobbies of 2; arguments are lobbyload
# flags added after it, so they change only what they name (the last value
# of a flag wins):
#   cmd/lobbyload/loadtest.sh -html report.html          # the default scenario, and an HTML report
#   cmd/lobbyload/loadtest.sh -players 2000 -lobby-share 0   # 2000 solo players
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

# lobbyd's commit, for the report: as go build stamped it into the binary,
# or else (-buildvcs=false) the commit of the checkout it was built from.
version=$($GO version -m "$dir/lobbyd" 2>/dev/null |
	awk '$2 == "vcs.revision" { rev = substr($3, 1, 12) } $2 == "vcs.modified" && $3 == "true" { dirty = "+dirty" } END { print rev dirty }')
if [ -z "$version" ] && version=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	# --no-optional-locks: do not take the index lock of a checkout in use.
	if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		version="$version+dirty"
	fi
fi

# The defaults first: flags given after them win.
set -- -players 4000 -rate 0 -lobby-share 0.25 -lobby-size 2 -duration 2m \
	-server-version "${version:-unknown}" "$@"
status=0
# lobbyload prints where the HTML report is (-html) on stderr.
"$dir/lobbyload" -url "$url" "$@" || status=$?
if [ "$status" -ne 0 ]; then
	echo "loadtest: lobbyload failed (exit $status); lobbyd's log:" >&2
	tail -n 40 "$dir/lobbyd.log" >&2
fi
exit "$status"
