#!/usr/bin/env bash
# Rendering against the wire (DESIGN.md section 12): `cargo bench --bench
# render` (personalized emails on one thread) and Postfix's smtp-source
# sending as many messages of the same size to smtp-sink on 127.0.0.1 with
# 16 sessions, alternately, RUNS times each, in one run of this script.
# Prints both rates, the ratio of the best runs (target: rendering at least
# four times smtp-source) and the spread.
#
#   bash benches/render.sh [RUNS]      # default 3
#
# Needs smtp-sink and smtp-source (see benches/smtp.sh), GNU time and jq.
set -euo pipefail

RUNS=${1:-3}
N=10000
PORT=${SMTP_BENCH_PORT:-$((30000 + RANDOM % 20000))}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for tool in smtp-sink smtp-source /usr/bin/time jq; do
    command -v "$tool" >/dev/null || { echo "benches/render.sh needs $tool (see benches/smtp.sh)" >&2; exit 2; }
done
RENDER=$(cargo bench --quiet --manifest-path "$ROOT/Cargo.toml" --bench render --no-run --message-format=json \
    | jq -r 'select(.target.name == "render" and .executable != null) | .executable')

WORK=$(mktemp -d)
SINK_PID=
cleanup() {
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
smtp-sink -u nobody 127.0.0.1:"$PORT" 1024 &
SINK_PID=$!
sleep 0.5

for attempt in $(seq "$RUNS"); do
    (cd "$ROOT" && "$RENDER") | tee -a "$WORK/render.txt"
    SIZE=$(tail -1 "$WORK/render.txt" | grep -o '[0-9]* bytes each' | grep -o '^[0-9]*')
    /usr/bin/time -f '%e' -o "$WORK/time.txt" \
        smtp-source -d -c -l "$SIZE" -m "$N" -s 16 -f coach@coaching-demo.net -t reader@example.net 127.0.0.1:"$PORT" > /dev/null
    awk -v n="$N" -v a="$attempt" -v size="$SIZE" '{ printf "smtp-source %d: %d messages of %d bytes in %.2f s = %.0f messages/s, 16 sessions\n", a, n, size, $1, n / $1 }' \
        "$WORK/time.txt" | tee -a "$WORK/source.txt"
done
awk '
    FNR == 1 { file++ }
    file == 1 { for (i = 1; i <= NF; i++) if ($(i + 1) == "emails/s") r = $i
                if (!rmax || r > rmax) rmax = r; if (!rmin || r < rmin) rmin = r }
    file == 2 { for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^messages\/s/) s = $i
                if (!smax || s > smax) smax = s; if (!smin || s < smin) smin = s }
    END {
        printf "\nrendering, one thread: %.0f emails/s best (%.0f - %.0f)\n", rmax, rmin, rmax
        printf "smtp-source, 16 sessions: %.0f messages/s best (%.0f - %.0f)\n", smax, smin, smax
        printf "ratio: rendering / smtp-source = %.2f (best / best; target >= 4)\n", rmax / smax
    }' "$WORK/render.txt" "$WORK/source.txt"
