#!/usr/bin/env bash
# Delivery benchmark (DESIGN.md section 12): `dripline run` sends one email
# to each of N subscribers through an SMTP server on 127.0.0.1 that accepts
# everything (Postfix's smtp-sink), with state recorded in SQLite; then
# Postfix's smtp-source sends N messages of 8 KB to the same sink, the bare
# limit of the machine. Prints emails/s, peak memory and the concurrency of
# both, and their ratio.
#
#   bash benches/smtp.sh [N] [CONCURRENCY]      # defaults: 10000 and 8
#
# Needs smtp-sink and smtp-source (Debian package postfix; install it with
#   echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
#   apt-get install -y postfix
# so that no mail daemon starts) and GNU time (/usr/bin/time).
set -euo pipefail

N=${1:-10000}
CONCURRENCY=${2:-8}
PORT=${SMTP_BENCH_PORT:-25725}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in smtp-sink smtp-source /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/smtp.sh needs $tool (see the top of this script)" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
DRIPLINE="$ROOT/target/release/dripline"

WORK=$(mktemp -d)
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# The sink: 127.0.0.1 only, never port 25; a backlog of 1024 connections.
smtp-sink -u nobody 127.0.0.1:"$PORT" 1024 &
SINK_PID=$!
sleep 0.5

# A project: one sequence of one step, N subscribers.
mkdir -p "$WORK/project/sequences/bench"
cd "$WORK/project"
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
port = $PORT
security = "none"
timeout = "30s"

[unsubscribe]
base_url = "https://news.example.com/dripline"
mailto = "unsubscribe@example.com"
EOF
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

"$DRIPLINE" check >/dev/null
SIZE=$("$DRIPLINE" preview bench --to preview >/dev/null && wc -c < preview/bench/01-gut.eml)

# Best of three each: the machine is shared, and the best run is the
# least disturbed one.
BEST_D=; BEST_S=; RSS_KB=0
for attempt in 1 2 3; do
    rm -f dripline.db dripline.db-wal dripline.db-shm
    /usr/bin/time -f '%e %M' -o time.txt "$DRIPLINE" run --now 2026-12-01T08:00:00Z > run.txt
    read -r seconds rss < time.txt
    SENT=$("$DRIPLINE" status --json | grep -o '"sent": [0-9]*' | head -1 | grep -o '[0-9]*$')
    if [ "$SENT" != "$N" ]; then
        cat run.txt
        echo "state records $SENT sent, expected $N" >&2
        exit 1
    fi
    echo "dripline run $attempt: $seconds s, peak RSS $rss KB"
    if [ -z "$BEST_D" ] || awk -v a="$seconds" -v b="$BEST_D" 'BEGIN { exit !(a < b) }'; then BEST_D=$seconds; fi
    [ "$rss" -gt "$RSS_KB" ] && RSS_KB=$rss

    /usr/bin/time -f '%e %M' -o source.txt \
        smtp-source -d -c -l 8192 -m "$N" -s "$CONCURRENCY" -f coach@coaching-demo.net -t reader@example.net 127.0.0.1:"$PORT" > /dev/null
    read -r seconds rss_source < source.txt
    echo "smtp-source $attempt: $seconds s"
    if [ -z "$BEST_S" ] || awk -v a="$seconds" -v b="$BEST_S" 'BEGIN { exit !(a < b) }'; then BEST_S=$seconds; fi
done

awk -v n="$N" -v c="$CONCURRENCY" -v size="$SIZE" -v td="$BEST_D" -v rss="$RSS_KB" -v ts="$BEST_S" 'BEGIN {
    d = n / td; s = n / ts
    printf "dripline run:  %d emails of %d bytes in %.2f s = %.0f emails/s, concurrency %d, peak RSS %.1f MB, state recorded\n", n, size, td, d, c, rss / 1024
    printf "smtp-source:   %d messages of 8192 bytes in %.2f s = %.0f messages/s, %d sessions\n", n, ts, s, c
    printf "ratio:         dripline / smtp-source = %.2f\n", d / s
}'
