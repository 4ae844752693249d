#!/usr/bin/env bash
# The foundation demo: one device node on a fresh data directory, the bakery's whole till
# export replayed into it through the sales API, the day totals printed and reconciled
# against the file, the journal's hash chain verified, the node stopped.
# Usage: scripts/run-demo.sh <posmesh binary> <csv>
set -euo pipefail
bin=${1:?posmesh binary}
csv=${2:?till export csv}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -r "$csv" ]; then
  echo "run: cannot read the till export $csv (expected ../shared/data/BreadBasket_DMS.csv beside the clone; set DATA=…)" >&2
  exit 1
fi

work=$(mktemp -d -t posmesh-demo.XXXXXX)
node_pid=""
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting device node till-1 of store bread-basket (data in $work/till-1)"
RUST_LOG=${RUST_LOG:-warn} "$bin" device \
  --data-dir "$work/till-1" --store-id bread-basket --device-id till-1 \
  --store-name "The Bread Basket" --catalog "$here/catalog/bakery.toml" \
  --api-listen 127.0.0.1:0 --mgmt-listen 127.0.0.1:0 --ready-file "$work/ready.json" \
  2> "$work/node.log" &
node_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/ready.json" ] && break
  kill -0 "$node_pid" 2>/dev/null || { echo "run: the node exited:" >&2; cat "$work/node.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$work/ready.json" ] || { echo "run: the node did not start within 30 s" >&2; exit 1; }
api=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$work/ready.json")
mgmt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mgmt"])' "$work/ready.json")

echo "== importing $csv through the sales API at $api"
"$bin" import "$csv" --api "$api"

echo
echo "== node status"
"$bin" status --mgmt "$mgmt"

echo
echo "== verifying the journal's hash chain"
"$bin" journal verify --data-dir "$work/till-1"
