#!/usr/bin/env bash
# Start or stop a local 3-server coord cluster on loopback, for trying it out.
#   scripts/cluster.sh up     # servers on 127.0.0.1:7181, :7182, :7183 (data in .cluster/)
#   scripts/cluster.sh status
#   scripts/cluster.sh down   # stop them (SIGTERM); data stays in .cluster/
#   scripts/cluster.sh clean  # stop and delete .cluster/
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cluster
bin=bin/coordd
cluster="1=127.0.0.1:7281,2=127.0.0.1:7282,3=127.0.0.1:7283"

up() {
	go build -o "$bin" ./cmd/coordd
	mkdir -p "$dir"
	for i in 1 2 3; do
		if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
			echo "server $i already running (pid $(cat "$dir/n$i.pid"))"
			continue
		fi
		if [ -d "$dir/n$i" ]; then
			# A restart needs nothing but the data dir.
			"$bin" --data-dir "$dir/n$i" >>"$dir/n$i.log" 2>&1 &
		else
			"$bin" --id "$i" --data-dir "$dir/n$i" --client-addr "127.0.0.1:718$i" \
				--peer-addr "127.0.0.1:728$i" --cluster "$cluster" >>"$dir/n$i.log" 2>&1 &
		fi
		echo $! >"$dir/n$i.pid"
		echo "server $i: client 127.0.0.1:718$i, log $dir/n$i.log"
	done
	for _ in $(seq 1 100); do
		if curl -fs 127.0.0.1:7181/readyz >/dev/null 2>&1 && curl -fs 127.0.0.1:7182/readyz >/dev/null 2>&1 &&
			curl -fs 127.0.0.1:7183/readyz >/dev/null 2>&1; then
			echo "cluster ready: COORD_SERVERS=127.0.0.1:7181,127.0.0.1:7182,127.0.0.1:7183"
			return 0
		fi
		sleep 0.1
	done
	echo "cluster not ready after 10s; see $dir/n*.log" >&2
	return 1
}

down() {
	for i in 1 2 3; do
		if [ -f "$dir/n$i.pid" ]; then
			kill "$(cat "$dir/n$i.pid")" 2>/dev/null || true
			rm -f "$dir/n$i.pid"
		fi
	done
}

status() {
	for i in 1 2 3; do
		printf 'server %s: ' "$i"
		curl -fs "127.0.0.1:718$i/v1/status" || echo "down"
		echo
	done
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
clean) down; rm -rf "$dir" ;;
*) echo "usage: $0 up|down|status|clean" >&2; exit 2 ;;
esac
