#!/usr/bin/env bash
# The `dripline run` performance claims of DESIGN.md section 12, reproducible:
#
#   1. outbox runs over a fresh 100,000-subscriber list that send 10,000
#      emails (the other 90,000 joined with a future `subscribed_at`) and
#      100,000 emails (step 1 of the example sequence, "immediately"):
#      emails/s and peak RSS. Memory is flat when the two peaks are about
#      equal: it follows the size of the list, not the number of emails;
#   2. `dripline run` on the 100,000-subscriber list with nothing due (everyone
#      got step 1 an hour earlier, the same local day): wall time (target
#      < 1 s) and peak RSS (target < 200 MB).
#
# Run from anywhere: `bash benches/run.sh`. It builds with `cargo build
# --release`, generates the data in a temporary folder (about 1.3 GB of .eml
# files; deleted at the end) and prints the figures. Needs GNU time
# (/usr/bin/time, Debian package `time`).
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
cargo build --release --quiet
bin=$repo/target/release/dripline
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Three zones whose 08:00 slots are all within catch_up (12h) of 14:00 UTC.
FIRST=2026-12-01T14:00:00Z   # step 1 goes to everybody
LATER=2026-12-01T15:00:00Z   # the same local day everywhere: nothing is due

# project DIR N DUE: the example project with an N-row list whose first DUE
# rows are due now; the others join in 2027.
project() {
    local dir=$1 n=$2 due=$3
    mkdir -p "$dir"
    cp "$repo/dripline.toml" "$dir/"
    cp -r "$repo/sequences" "$dir/"
    awk -v n="$n" -v due="$due" 'BEGIN {
        split("America/New_York America/Chicago Europe/London", zones, " ")
        print "email,name,timezone,subscribed_at,city"
        for (i = 0; i < n; i++)
            printf "reader%d@example.com,Reader %d,%s,%s,City %d\n", i, i, zones[i % 3 + 1],
                (i < due ? "" : "2027-06-01"), i % 100
    }' > "$dir/subscribers.csv"
}

# measure LABEL DIR ARGS...: runs dripline in DIR; prints wall seconds and peak RSS.
measure() {
    local label=$1 dir=$2
    shift 2
    local stats=$work/time.txt
    (cd "$dir" && /usr/bin/time -f '%e %M %U %S' -o "$stats" "$bin" "$@" > "$work/stdout.txt" 2> "$work/stderr.txt") || {
        echo "$label: dripline failed:" >&2
        cat "$work/stdout.txt" "$work/stderr.txt" >&2
        exit 1
    }
    read -r seconds kb user sys < "$stats"
    echo "$label|$seconds|$kb|$user|$sys|$(cat "$work/stdout.txt")"
}

# report LINE [EMAILS]: one human-readable line.
report() {
    local line=$1 emails=${2:-}
    IFS='|' read -r label seconds kb user sys out <<< "$line"
    local mb=$(( (kb + 512) / 1024 ))
    if [[ -n $emails ]]; then
        local rate
        rate=$(awk -v e="$emails" -v s="$seconds" 'BEGIN { printf "%d", (s > 0 ? e / s : 0) }')
        printf '%-44s %7.2f s  %6d emails/s  peak RSS %4d MB\n' "$label" "$seconds" "$rate" "$mb"
    else
        printf '%-44s %7.2f s  (CPU %s s user, %s s system)  peak RSS %4d MB\n' "$label" "$seconds" "$user" "$sys" "$mb"
    fi
    printf '    %s\n' "$out"
}

echo "dripline $("$bin" --version | cut -d' ' -f2), $(nproc) CPUs, $(uname -sr)"
echo "generating lists in $work"
project "$work/10k" 100000 10000
project "$work/100k" 100000 100000

small=$(measure "run: 10,000 emails (100,000 list)" "$work/10k" run --now "$FIRST")
report "$small" 10000
big=$(measure "run: 100,000 emails (100,000 list)" "$work/100k" run --now "$FIRST")
report "$big" 100000
sent=$(find "$work/100k/outbox" -name '*.eml' | wc -l)
[[ $sent -eq 100000 ]] || { echo "expected 100000 .eml files, found $sent" >&2; exit 1; }

idle=$(measure "run: 100,000 subscribers, nothing due" "$work/100k" run --now "$LATER")
report "$idle"
[[ $(find "$work/100k/outbox" -name '*.eml' | wc -l) -eq 100000 ]] || { echo "the idle run sent email" >&2; exit 1; }
# A second time, with the state file warm in the page cache either way.
idle2=$(measure "run: 100,000 subscribers, nothing due (again)" "$work/100k" run --now "$LATER")
report "$idle2"

IFS='|' read -r _ _ small_kb _ <<< "$small"
IFS='|' read -r _ _ big_kb _ <<< "$big"
IFS='|' read -r _ idle_s idle_kb _ <<< "$idle2"
echo "load average during the benchmark: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "memory during a run on 100,000 subscribers: peak RSS $(( small_kb / 1024 )) MB at 10,000 emails, $(( big_kb / 1024 )) MB at 100,000 (target: flat)"
awk -v s="$idle_s" -v kb="$idle_kb" 'BEGIN {
    printf "nothing due on 100,000: %.2f s (target < 1 s: %s), %d MB (target < 200 MB: %s)\n",
        s, (s < 1 ? "met" : "MISSED"), kb / 1024, (kb < 200 * 1024 ? "met" : "MISSED")
}'
