#!/usr/bin/env bash
# The README's blockctl tour ("`blockctl`: the verifying command-line client"), run from the shell
# against a real `blockdb serve`: every command of the tour, in order, with its output and exit
# code checked against the README's transcript.
#
# Usage: tour.sh BLOCKDB BLOCKCTL SCRATCH_DIR
#
# The transcripts below are the README's, verbatim; keep the two the same. The values that differ
# from run to run are the README's sample values, which the checks rewrite before comparing:
#   127.0.0.1:7070                       -> the address this node printed
#   blockdb-node-1+9f643730+Ae6f...      -> the verifier key this node printed
#   90ffdcdf4df98a7b851c57235d966784     -> any cluster id (32 hex digits)
#   88330e27d41abe8bc8dff4204f4b652d     -> any transaction id (32 hex digits)
#   f2857b6e6d1d...                      -> any hash (64 hex digits)
# Everything else must match exactly, line for line. A successful command must print nothing on
# stderr; the refused insert prints its line on stderr and nothing on stdout.
#
# The node runs with its data in SCRATCH_DIR/data and its output in SCRATCH_DIR/blockdb.out and
# SCRATCH_DIR/blockdb.log; blockctl runs in SCRATCH_DIR, where it keeps its key and state files.
# Exit code 0 when the tour matches the README, 1 with a message naming the step otherwise, 2 on
# bad usage.
set -euo pipefail
# `&` in a ${var//pattern/replacement} is the matched text from bash 5.2 on; here it is literal.
shopt -u patsub_replacement 2>/dev/null || true

if [[ $# -ne 3 ]]; then
    echo "usage: $0 BLOCKDB BLOCKCTL SCRATCH_DIR" >&2
    exit 2
fi
absolute() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
blockdb=$(absolute "$1")
blockctl=$(absolute "$2")
scratch=$(absolute "$3")
for bin in "$blockdb" "$blockctl"; do
    [[ -x $bin ]] || { echo "tour.sh: $bin is not an executable" >&2; exit 2; }
done
if [[ -e $scratch/data ]]; then
    echo "tour.sh: $scratch/data exists; the tour needs a new node" >&2
    exit 2
fi
mkdir -p "$scratch"

# The tour is of the defaults: no settings from the environment, no input but what a step gives.
for var in $(compgen -e); do
    if [[ $var == BLOCKDB_* || $var == BLOCKCTL_* ]]; then unset "$var"; fi
done
exec </dev/null

step="start the node"
fail() {
    echo "tour.sh: FAILED at step '$step': $*" >&2
    exit 1
}

# Polls for a condition a plain shell cannot wait on otherwise: `until_true TENTHS COMMAND...`
# runs COMMAND every 0.1 s until it succeeds (0) or TENTHS tries have failed (1).
until_true() {
    local tries=$1 i
    shift
    for ((i = 0; i < tries; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Stops the node with SIGTERM (the README's clean stop) and sets server_code to its exit code;
# after 10 s it is killed (server_code 137) and the stop fails.
server_pid=
server_code=
exited() { ! kill -0 "$1" 2>/dev/null; }
stop_server() {
    [[ -n $server_pid ]] || return 0
    local pid=$server_pid
    server_pid=
    kill -TERM "$pid" 2>/dev/null || true
    if until_true 100 exited "$pid"; then
        server_code=0
        wait "$pid" || server_code=$?
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    server_code=137
    wait "$pid" 2>/dev/null || true
    return 1
}
on_exit() {
    local code=$?
    if [[ -n $server_pid ]]; then stop_server || true; fi
    if [[ $code -ne 0 && -f $scratch/blockdb.log ]]; then
        echo "--- the node's log ($scratch/blockdb.log), last lines:" >&2
        tail -n 20 "$scratch/blockdb.log" >&2 || true
    fi
    exit "$code"
}
trap on_exit EXIT

# Start the node on a port from the OS and learn its address and key from what it prints.
NO_COLOR=1 "$blockdb" serve --listen 127.0.0.1:0 --data-dir "$scratch/data" \
    >"$scratch/blockdb.out" 2>"$scratch/blockdb.log" &
server_pid=$!
started() { grep -q '^verifier key: ' "$scratch/blockdb.out" || exited "$server_pid"; }
until_true 600 started || fail "the node printed no verifier key within 60 s"
kill -0 "$server_pid" 2>/dev/null || fail "the node exited before it listened"
addr_re='^blockdb listening on http://([0-9.]+:[0-9]+) '
key_re='^verifier key: (blockdb-node-1\+[0-9a-f]{8}\+[A-Za-z0-9+/]{40,}=*)$'
addr=
key=
while IFS= read -r line; do
    if [[ $line =~ $addr_re ]]; then addr=${BASH_REMATCH[1]}; fi
    if [[ $line =~ $key_re ]]; then key=${BASH_REMATCH[1]}; fi
done <"$scratch/blockdb.out"
[[ -n $addr && -n $key ]] ||
    fail "no 'blockdb listening on http://ADDR' or 'verifier key: KEY' line in:
$(cat "$scratch/blockdb.out")"
url="http://$addr"

# ere_escape TEXT: TEXT as an extended regular expression matching exactly TEXT.
ere_escape() { printf '%s\n' "$1" | sed -e 's/[][\.*^$+?(){}|]/\\&/g'; }
# A line of a README transcript as an anchored regular expression for this run.
readme_addr=$(ere_escape '127.0.0.1:7070')
readme_key=$(ere_escape 'blockdb-node-1+9f643730+Ae6fYKYfaeVJ5E9tbvBGWE18xFKmPLDcsHh/LzXkG6lT')
readme_cluster=90ffdcdf4df98a7b851c57235d966784
readme_txn=88330e27d41abe8bc8dff4204f4b652d
readme_hash=f2857b6e6d1da16d52e908fc526b8fba45e4019bb29852233407ea0ddb0c7b82
this_addr=$(ere_escape "$addr")
this_key=$(ere_escape "$key")
line_re() {
    local re
    re=$(ere_escape "$1")
    re=${re//"$readme_addr"/"$this_addr"}
    re=${re//"$readme_key"/"$this_key"}
    re=${re//"$readme_cluster"/'[0-9a-f]{32}'}
    re=${re//"$readme_txn"/'[0-9a-f]{32}'}
    re=${re//"$readme_hash"/'[0-9a-f]{64}'}
    printf '^%s$' "$re"
}

# run_blockctl CODE ARGS...: `blockctl --endpoint URL ARGS...` in the scratch directory, its
# stdout in $out and stderr in $err; fails the step unless it exits with CODE.
run_blockctl() {
    local want=$1 code=0
    shift
    (cd "$scratch" && "$blockctl" --endpoint "$url" "$@") \
        >"$scratch/step.out" 2>"$scratch/step.err" || code=$?
    out=$(cat "$scratch/step.out")
    err=$(cat "$scratch/step.err")
    if [[ $code -ne $want ]]; then
        fail "exit code $code, the README's is $want
--- stdout:
$out
--- stderr:
$err"
    fi
}

# matches NAME ACTUAL: ACTUAL (one of the command's streams, called NAME) against the README
# transcript on stdin, line for line.
matches() {
    local name=$1 actual=$2 expected
    expected=$(cat)
    local -a want got
    mapfile -t want <<<"$expected"
    if [[ -z $actual ]]; then got=(); else mapfile -t got <<<"$actual"; fi
    if [[ -z $expected ]]; then want=(); fi
    local why= i
    if [[ ${#got[@]} -ne ${#want[@]} ]]; then
        why="${#got[@]} line(s), the README shows ${#want[@]}"
    else
        for i in "${!want[@]}"; do
            if ! [[ ${got[i]} =~ $(line_re "${want[i]}") ]]; then
                why="line $((i + 1)) differs from the README's"
                break
            fi
        done
    fi
    if [[ -n $why ]]; then
        fail "$name: $why
--- the README (its sample address 127.0.0.1:7070 is $addr here, its key ..9f643730.. is $key):
$expected
--- $name:
$actual"
    fi
}

step="blockctl trust init"
run_blockctl 0 trust init <<<y
# The README shows the terminal's echo of the answer after the prompt; a pipe echoes nothing.
out=${out/'[y/N] '/'[y/N] y'$'\n'}
matches stdout "$out" <<'EOF'
http://127.0.0.1:7070: node blockdb-node-1 signs with
  blockdb-node-1+9f643730+Ae6fYKYfaeVJ5E9tbvBGWE18xFKmPLDcsHh/LzXkG6lT
  log blockdb.local/90ffdcdf4df98a7b851c57235d966784/shard/0
cluster 90ffdcdf4df98a7b851c57235d966784: 1 member(s), answered by node 1
  node 1 (api 127.0.0.1:7070, peer none) signs with
    blockdb-node-1+9f643730+Ae6fYKYfaeVJ5E9tbvBGWE18xFKmPLDcsHh/LzXkG6lT
Trust these keys (a checkpoint signed by any one of them)? Compare them with the ones the nodes printed at start-up. [y/N] y
saved 1 key(s) to blockctl-keys.txt
EOF
matches stderr "$err" </dev/null
[[ $(grep -v '^#' "$scratch/blockctl-keys.txt") == "$key" ]] ||
    fail "blockctl-keys.txt does not hold exactly the node's key $key:
$(cat "$scratch/blockctl-keys.txt")"

step="blockctl insert alice hello"
run_blockctl 0 insert alice hello
matches stdout "$out" <<'EOF'
alice v1 committed: shard 0 leaf 0 (checkpoint of size 1 signed by blockdb-node-1+9f643730+Ae6fYKYfaeVJ5E9tbvBGWE18xFKmPLDcsHh/LzXkG6lT)
EOF
matches stderr "$err" </dev/null

step="blockctl append alice 'hello again' --expected-version 1"
run_blockctl 0 append alice 'hello again' --expected-version 1
matches stdout "$out" <<'EOF'
alice v2 committed: shard 0 leaf 1 (checkpoint of size 2 signed by blockdb-node-1+9f643730+Ae6fYKYfaeVJ5E9tbvBGWE18xFKmPLDcsHh/LzXkG6lT)
EOF
matches stderr "$err" </dev/null

step="blockctl get alice"
run_blockctl 0 get alice
matches stdout "$out" <<'EOF'
alice v2 = hello again (verified: shard 0 leaf 1 in tree of size 2)
EOF
matches stderr "$err" </dev/null

step="blockctl get alice --history"
run_blockctl 0 get alice --history
matches stdout "$out" <<'EOF'
alice v1 = hello (verified: shard 0 leaf 0 in tree of size 2)
alice v2 = hello again (verified: shard 0 leaf 1 in tree of size 2)
EOF
matches stderr "$err" </dev/null

step="blockctl consistency 1"
run_blockctl 0 consistency 1
matches stdout "$out" <<'EOF'
consistency proof from 1 to 2 (1 hashes):
  f2857b6e6d1da16d52e908fc526b8fba45e4019bb29852233407ea0ddb0c7b82
EOF
matches stderr "$err" </dev/null

# Exit code 3: the server refused (README: "3 the server refused (conflict, not found, bad
# input, a transaction that did not commit)"); the README's line is on stderr.
step="blockctl insert alice x"
run_blockctl 3 insert alice x
matches stdout "$out" </dev/null
matches stderr "$err" <<'EOF'
blockctl: the server refused the request (already_exists): the key already exists (current version 2)
EOF

# The README's transaction transcript, which follows the tour's.
step="blockctl txn --read alice --append 'alice=hello, bob@2' --insert bob=hi"
run_blockctl 0 txn --read alice --append 'alice=hello, bob@2' --insert bob=hi
matches stdout "$out" <<'EOF'
transaction 88330e27d41abe8bc8dff4204f4b652d committed
read  alice v2 = hello again (verified: shard 0 leaf 1 in tree of size 5)
write alice v3: shard 0 leaf 2
write bob v1: shard 0 leaf 3
receipt verified: commit decision at shard 0 leaf 4, 2 write(s) proven
EOF
matches stderr "$err" </dev/null

step="blockctl txn --check alice@2 --insert carol=late"
run_blockctl 3 txn --check alice@2 --insert carol=late
matches stdout "$out" </dev/null
matches stderr "$err" <<'EOF'
blockctl: the server refused the request (aborted): the transaction needs key "alice" at version 2 but it is at 3
EOF

# The README: "SIGINT or SIGTERM stops the node cleanly".
step="stop the node (SIGTERM)"
stop_server || fail "the node did not stop within 10 s of SIGTERM"
[[ $server_code -eq 0 ]] || fail "the node exited with $server_code after SIGTERM"

echo "tour.sh: the README's blockctl tour matches (node $addr, key $key)"
