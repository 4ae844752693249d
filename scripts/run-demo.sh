#!/usr/bin/env bash
# The main job (`make run`): `posmesh demo` — a store of three device nodes on this machine
# replays the bakery's whole till export through a SIGKILL of one till, a partition of
# another and an internet outage cutting the store from the chain's cloud and the acquirer
# (card payments go offline, forwarded afterwards), closes the last day, then reconciles
# every device and the cloud against the file and each other (see README). The store runs
# in network namespaces the demo makes itself (real mDNS), as root or through an
# unprivileged user namespace; where neither works it says why and runs on loopback.
# Usage: scripts/run-demo.sh <posmesh binary> <csv>
set -euo pipefail
bin=${1:?posmesh binary}
csv=${2:?till export csv}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -r "$csv" ]; then
  echo "run: cannot read the till export $csv (expected ../shared/data/BreadBasket_DMS.csv beside the clone; set DATA=…)" >&2
  exit 1
fi
RUST_LOG=${RUST_LOG:-warn} exec "$bin" demo "$csv" --catalog "$here/catalog/bakery.toml"
