#!/usr/bin/env bash
# Delivery with the state in PostgreSQL, beside SQLite, in one run: N
# subscribers due at once, sent through Postfix's smtp-sink on 127.0.0.1,
# with the state
#   1. in a SQLite file (one `dripline run`),
#   2. in PostgreSQL, one `dripline run`,
#   3. in PostgreSQL, three `dripline run` processes started together on
#      one database (they compete for the same subscribers; each email is
#      claimed once).
# Each case starts from an empty state and checks that the state records
# all N as sent exactly once; emails/s is N over the wall time of the case
# (for case 3, from the start of the first process to the end of the last).
# Best of three of each. With DRIPLINE=path another build is measured.
#
#   bash benches/postgres.sh [N] [CONCURRENCY] [DELAY]   # defaults: 10000, 8, 0
#
# DELAY > 0 makes the sink wait that many seconds before it answers each
# DATA command (smtp-sink -w): a slow provider, where the time goes to
# waiting on the network rather than to the CPU, as with a real one. Try
# `bash benches/postgres.sh 96 8 1`.
#
# Needs smtp-sink (Debian package postfix, installed as benches/smtp.sh
# says) and PostgreSQL (Debian package postgresql: initdb and postgres
# under /usr/lib/postgresql/VERSION/bin). The server is a throwaway one:
# its own data folder, 127.0.0.1 only, durable settings (fsync on, as the
# SQLite state's synchronous = FULL), run as the `postgres` user when this
# script runs as root, stopped by PID at the end.
set -euo pipefail
shopt -s inherit_errexit

N=${1:-10000}
CONCURRENCY=${2:-8}
DELAY=${3:-0}
SMTP_PORT=${SMTP_BENCH_PORT:-25726}
PG_PORT=${PG_BENCH_PORT:-25727}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

command -v smtp-sink >/dev/null || { echo "benches/postgres.sh needs smtp-sink (see benches/smtp.sh)" >&2; exit 2; }
# shellcheck source=benches/lib/postgres.sh
source "$ROOT/benches/lib/postgres.sh"

if [ -z "${DRIPLINE:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    DRIPLINE="$ROOT/target/release/dripline"
fi

WORK=$(mktemp -d)
chmod 755 "$WORK"
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    pg_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
pg_start "$WORK/pg" "$PG_PORT"

SINK_WAIT=()
[ "$DELAY" -gt 0 ] && SINK_WAIT=(-w "$DELAY")
smtp-sink -u nobody "${SINK_WAIT[@]}" 127.0.0.1:"$SMTP_PORT" 1024 &
SINK_PID=$!
sleep 0.5

# A project: one sequence of one step, N subscribers (as benches/smtp.sh).
mkdir -p "$WORK/project/sequences/bench"
cd "$WORK/project"
write_config() {
    cat > dripline.toml <<EOF
timezone = "UTC"

[sender]
from = "Coach <coach@coaching-demo.net>"
postal_address = "42 Harbour Road, Portsmouth"

[[drip]]
sequence = "bench"
list = "list.csv"

[delivery]
transport = "smtp"
concurrency = $CONCURRENCY
max_per_second = 0

[smtp]
host = "127.0.0.1"
port = $SMTP_PORT
security = "none"
timeout = "30s"

[unsubscribe]
base_url = "https://news.example.com/dripline"
mailto = "unsubscribe@example.com"
$1
EOF
}
printf '%s\n' "$(openssl rand -hex 32)" > .dripline-secret
printf 'name = "Bench"\nsend_at = "0 8 * * *"\n' > sequences/bench/sequence.toml
{
    printf '+++\nsubject = "Day 1: What your gut does for you"\npreheader = "Five minutes today"\n+++\n'
    printf 'Hi {{subscriber.first_name}},\n\n'
    for paragraph in 1 2 3 4 5 6; do
        printf 'Paragraph %s. Your gut lining is one cell thick, and it decides what gets in. ' "$paragraph"
        printf 'What you eat feeds the microbes that keep it whole, and they in turn talk to your immune system. '
        printf 'Fibre, sleep and a calm day help more than any supplement; read more at https://example.com/gut.\n\n'
    done
} > sequences/bench/01-gut.md
{
    echo "email,name"
    for ((i = 0; i < N; i++)); do echo "reader$i@example.net,Reader $i"; done
} > list.csv

NOW=2026-12-01T08:00:00Z
export DRIPLINE_DATABASE_URL

# Runs one case with INSTANCES processes on a fresh state; prints seconds.
run_case() {
    local backend=$1 instances=$2 attempt=$3
    if [ "$backend" = sqlite ]; then
        write_config ""
        rm -f dripline.db dripline.db-wal dripline.db-shm
    else
        DRIPLINE_DATABASE_URL=$(pg_url "bench_${instances}_$attempt")
        write_config $'[state]\nurl_env = "DRIPLINE_DATABASE_URL"'
    fi
    local start end pids=()
    start=$(date +%s.%N)
    for ((i = 0; i < instances; i++)); do
        "$DRIPLINE" run --now "$NOW" > "run$i.txt" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || { cat run*.txt >&2; echo "a run failed" >&2; exit 1; }
    done
    end=$(date +%s.%N)
    local sent
    # The step's count (the first "sent" after "sequences"), not one run's.
    sent=$("$DRIPLINE" status --json | sed -n '/"sequences"/,$p' | grep -o '"sent": [0-9]*' | head -1 | grep -o '[0-9]*$')
    if [ "$sent" != "$N" ]; then
        echo "$backend x$instances: the state records $sent sent, expected $N" >&2
        exit 1
    fi
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

declare -A BEST
for attempt in 1 2 3; do
    for case in "sqlite 1" "postgres 1" "postgres 3"; do
        set -- $case
        seconds=$(run_case "$1" "$2" "$attempt") || exit 1
        echo "$1 x$2, run $attempt: $seconds s"
        key="$1 $2"
        if [ -z "${BEST[$key]:-}" ] || awk -v a="$seconds" -v b="${BEST[$key]}" 'BEGIN { exit !(a < b) }'; then
            BEST[$key]=$seconds
        fi
    done
done

for case in "sqlite 1" "postgres 1" "postgres 3"; do
    set -- $case
    awk -v n="$N" -v t="${BEST[$case]}" -v b="$1" -v i="$2" -v c="$CONCURRENCY" 'BEGIN {
        printf "%-8s %d instance%s: %d emails in %.2f s = %.0f emails/s (concurrency %d each)\n", b, i, (i == 1 ? " " : "s"), n, t, n / t, c
    }'
done
