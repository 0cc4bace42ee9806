#!/usr/bin/env bash
# The long mode of the chaos harness: every workload under every group of faults, TIME each
# (default 5m), on 3 nodes and 2 shards, one run at a time, from a release build. Each run leaves
# its folder under OUT; one line per run (workload, nemesis, the run's summary) goes to
# OUT/summary.txt. Exit code 0 only when every run was valid.
#
#   chaos/scripts/long-runs.sh                      # 15 runs of 5 minutes
#   TIME=10m SEED=3 WORKLOADS="register bank" chaos/scripts/long-runs.sh
#
# The nemesis groups: partitions and kills with every node's clock skewed by up to ten minutes;
# pauses, delays and stalls; disk damage (and the replacement of the damaged node).
set -uo pipefail
cd "$(dirname "$0")/../.."

TIME=${TIME:-5m}
SEED=${SEED:-11}
OUT=${OUT:-chaos-runs/long}
WORKLOADS=${WORKLOADS:-register set ledger list-append bank}
NEMESES=${NEMESES:-partition,kill pause,delay,stall disk}

cargo build --release --locked -p blockdb-server -p blockdb-chaos || exit 2
mkdir -p "$OUT"
summary="$OUT/summary.txt"
failed=0
for workload in $WORKLOADS; do
    case $workload in
        register) keys=12 ;;
        bank) keys=8 ;;
        *) keys=6 ;;
    esac
    for nemesis in $NEMESES; do
        skew=()
        [[ $nemesis == *partition* ]] && skew=(--clock-skew 10m)
        log="$OUT/$workload-${nemesis//,/-}.log"
        echo "== $workload under $nemesis for $TIME (seed $SEED)"
        target/release/blockdb-chaos run --nodes 3 --shards 2 --workload "$workload" \
            --nemesis "$nemesis" --time "$TIME" --seed "$SEED" --concurrency 8 --rate 60 \
            --keys "$keys" --fault-interval 5s "${skew[@]}" --node-arg=--txn-timeout-ms=2000 \
            --out "$OUT" >"$log" 2>&1
        code=$?
        line=$(grep -E '^(VALID|INVALID) ' "$log" | tail -n 1)
        [[ -n $line ]] || line="no result (exit code $code): see $log"
        echo "$workload | $nemesis | $line" | tee -a "$summary"
        ((code == 0)) || failed=1
    done
done
exit $failed
