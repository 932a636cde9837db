#!/usr/bin/env bash
# Delivery benchmark (DESIGN.md section 12): `dripline run` sends one email
# to each of N subscribers through an SMTP server on 127.0.0.1 that accepts
# everything (Postfix's smtp-sink), with state recorded in SQLite; then
# Postfix's smtp-source sends N messages of the same size to the same sink
# with as many sessions, the bare limit of the machine. The two alternate,
# RUNS times each, in one run of this script. Prints each rate, dripline's
# CPU-seconds per 1,000 emails (user + system, GNU time), the ratio of the
# best runs and the spread.
#
#   bash benches/smtp.sh [N] [CONCURRENCY] [RUNS]   # defaults: 10000, 16, 3
#
# With DELAY_MS=10 a proxy on 127.0.0.1 (benches/relay.rs) sits between
# both clients and the sink and holds every chunk 10 ms in each direction:
# a relay 20 ms away. With DRIPLINE=path another build is measured.
# With CALLGRIND=1 it counts the instructions of one delivery instead
# (see below): `CALLGRIND=1 bash benches/smtp.sh 10000`.
#
# Needs smtp-sink and smtp-source (Debian package postfix; install it with
#   echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
#   apt-get install -y postfix
# so that no mail daemon starts) and GNU time (/usr/bin/time).
set -euo pipefail

N=${1:-10000}
CONCURRENCY=${2:-16}
RUNS=${3:-3}
DELAY_MS=${DELAY_MS:-0}
SINK_PORT=${SMTP_BENCH_PORT:-$((30000 + RANDOM % 20000))}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

for tool in smtp-sink smtp-source /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "benches/smtp.sh needs $tool (see the top of this script)" >&2; exit 2; }
done

if [ -z "${DRIPLINE:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    DRIPLINE="$ROOT/target/release/dripline"
fi

WORK=$(mktemp -d)
SINK_PID=
PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# The sink: 127.0.0.1 only, never port 25; a backlog of 1024 connections.
smtp-sink -u nobody 127.0.0.1:"$SINK_PORT" 1024 &
SINK_PID=$!
PORT=$SINK_PORT
if [ "$DELAY_MS" != 0 ]; then
    PORT=$((SINK_PORT + 1))
    PROXY=$(cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench relay --no-run --message-format=json \
        | jq -r 'select(.target.name == "relay" and .executable != null) | .executable')
    # Bounded: it exits on its own after an hour.
    "$PROXY" 127.0.0.1:"$PORT" 127.0.0.1:"$SINK_PORT" "$DELAY_MS" 3600 &
    PROXY_PID=$!
fi
sleep 0.5

# A project: one sequence of one step, N subscribers.
mkdir -p "$WORK/project/sequences/bench"
cd "$WORK/project"
cat > dripline.toml <<TOML
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
TOML
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
# They all join at 08:00, when the timed run sends; an untimed run an hour
# earlier reads the list into the state first, as the run after an edit of
# the list does, so the timed run is the morning's delivery alone.
{
    echo "email,name,subscribed_at"
    for ((i = 0; i < N; i++)); do echo "reader$i@example.net,Reader $i,2026-12-01T08:00:00Z"; done
} > list.csv

"$DRIPLINE" check >/dev/null
SIZE=$("$DRIPLINE" preview bench --to preview >/dev/null && wc -c < preview/bench/01-gut.eml)

# With CALLGRIND=1 the delivery runs once, under valgrind's callgrind,
# which counts the user-space instructions it executes: a figure that
# repeats to 0.01 %, where wall and CPU time swing with the host. (Valgrind
# has no SHA-NI and counts a `rep movsb` copy byte by byte, so hashing and
# large copies weigh more there than on the CPU.)
if [ "${CALLGRIND:-0}" = 1 ]; then
    command -v valgrind >/dev/null || { echo "CALLGRIND=1 needs valgrind (apt-get install valgrind)" >&2; exit 2; }
    "$DRIPLINE" run --now 2026-12-01T07:00:00Z > run.txt
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$DRIPLINE" run --now 2026-12-01T08:00:00Z > run.txt 2> valgrind.txt
    echo "$N emails: $(grep -o 'refs: *[0-9,]*' valgrind.txt | grep -o '[0-9,]*$') user-space instructions (callgrind)"
    exit 0
fi

: > dripline.txt
: > source.txt
for attempt in $(seq "$RUNS"); do
    rm -f dripline.db dripline.db-wal dripline.db-shm
    /usr/bin/time -f '%e' -o time.txt "$DRIPLINE" run --now 2026-12-01T07:00:00Z > run.txt
    echo "import $attempt: the list read into the state in $(cat time.txt) s (untimed)"
    /usr/bin/time -f '%e %U %S %M' -o time.txt "$DRIPLINE" run --now 2026-12-01T08:00:00Z > run.txt
    read -r seconds user system rss < time.txt
    SENT=$("$DRIPLINE" status --json | grep -o '"sent": [0-9]*' | head -1 | grep -o '[0-9]*$')
    if [ "$SENT" != "$N" ]; then
        cat run.txt
        echo "state records $SENT sent, expected $N" >&2
        exit 1
    fi
    echo "$seconds $user $system $rss" >> dripline.txt
    awk -v n="$N" -v t="$seconds" -v u="$user" -v s="$system" -v r="$rss" -v a="$attempt" 'BEGIN {
        printf "dripline run %d: %.2f s = %.0f emails/s, CPU %.3f s per 1,000 emails (%.2f user + %.2f system), peak RSS %.1f MB\n",
            a, t, n / t, (u + s) * 1000 / n, u, s, r / 1024 }'

    /usr/bin/time -f '%e %U %S' -o time.txt \
        smtp-source -d -c -l "$SIZE" -m "$N" -s "$CONCURRENCY" -f coach@coaching-demo.net -t reader@example.net 127.0.0.1:"$PORT" > /dev/null
    read -r seconds user system < time.txt
    echo "$seconds $user $system" >> source.txt
    awk -v n="$N" -v t="$seconds" -v a="$attempt" 'BEGIN { printf "smtp-source  %d: %.2f s = %.0f messages/s\n", a, t, n / t }'
done

awk -v n="$N" -v c="$CONCURRENCY" -v size="$SIZE" -v delay="$DELAY_MS" '
    FNR == 1 { file++ }
    file == 1 { t = $1; cpu = ($2 + $3) * 1000 / n
                if (!dmin || t < dmin) dmin = t; if (t > dmax) dmax = t
                if (!cmin || cpu < cmin) cmin = cpu; if (cpu > cmax) cmax = cpu }
    file == 2 { t = $1; if (!smin || t < smin) smin = t; if (t > smax) smax = t }
    END {
        where = delay > 0 ? sprintf(" through a proxy adding %d ms each way", delay) : ""
        printf "\n%d emails of %d bytes, %d sessions each%s:\n", n, size, c, where
        printf "dripline run:  %.0f emails/s best (%.0f - %.0f), state recorded\n", n / dmin, n / dmax, n / dmin
        printf "CPU:           %.3f s per 1,000 emails best (%.3f - %.3f)\n", cmin, cmin, cmax
        printf "smtp-source:   %.0f messages/s best (%.0f - %.0f)\n", n / smin, n / smax, n / smin
        printf "ratio:         dripline / smtp-source = %.2f (best / best)\n", smin / dmin
    }' dripline.txt source.txt
