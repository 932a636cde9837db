#!/usr/bin/env bash
# What a pass costs on a large list (DESIGN.md section 12), reproducible:
#
#   1. `dripline run` on N subscribers (default 1,000,000) mid-course, with
#      nothing due: every subscriber got steps 1 to 3 of the example course,
#      one a day, and step 4 is due tomorrow morning. Targets: under 1 s and
#      150 MB with the state in SQLite; under 2 s after one row of the list
#      changed; under 2 s with the state in PostgreSQL;
#   2. a pass that sends 100,000 emails from an N-subscriber list (the other
#      subscribers join next year), to the outbox: its peak memory, target
#      under 150 MB.
#
# The mid-course state is made the way it would be after three mornings:
# one run imports the list (nobody is due yet), then the three sent steps
# are written into the state file with sqlite3 (Python), and every member
# is made due for a look, as after an upgrade; the first pass after that
# looks at all of them once (its time is printed too), the ones after it
# are the figures. Each figure is wall time and peak RSS from GNU time.
#
#   bash benches/scale.sh [N]          # default 1000000
#
# Needs /usr/bin/time (Debian package `time`), python3, and for the
# PostgreSQL figure Debian's postgresql (benches/lib/postgres.sh).
# It writes about 1.2 GB (the list, the state, 100,000 .eml files) in a
# temporary folder, deleted at the end.
set -euo pipefail
shopt -s inherit_errexit

N=${1:-1000000}
PG_PORT=${PG_BENCH_PORT:-25728}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
# shellcheck source=benches/lib/postgres.sh
source "$ROOT/benches/lib/postgres.sh"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
DRIPLINE="$ROOT/target/release/dripline"
WORK=$(mktemp -d)
chmod 755 "$WORK"
cleanup() {
    pg_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

# project DIR JOINED_FIRST FIRST JOINED_REST: the example project with an
# N-row list in three zones; the first FIRST rows joined at JOINED_FIRST,
# the others at JOINED_REST.
project() {
    local dir=$1
    mkdir -p "$dir"
    cp "$ROOT/dripline.toml" "$dir/"
    cp -r "$ROOT/sequences" "$dir/"
    awk -v n="$N" -v first="$3" -v a="$2" -v b="$4" 'BEGIN {
        split("America/New_York America/Chicago Europe/London", zones, " ")
        print "email,name,timezone,subscribed_at,city"
        for (i = 0; i < n; i++)
            printf "reader%d@example.com,Reader %d,%s,%s,City %d\n", i, i, zones[i % 3 + 1],
                (i < first ? a : b), i % 100
    }' > "$dir/subscribers.csv"
}

# measure LABEL DIR ARGS...: runs dripline in DIR; prints seconds and peak RSS.
measure() {
    local label=$1 dir=$2
    shift 2
    (cd "$dir" && /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$DRIPLINE" "$@" > "$WORK/out.txt" 2> "$WORK/err.txt") || {
        echo "$label: dripline failed:" >&2
        cat "$WORK/out.txt" "$WORK/err.txt" >&2
        exit 1
    }
    read -r seconds kb < "$WORK/time.txt"
    printf '%-58s %7.2f s  peak RSS %4d MB   %s\n' "$label" "$seconds" $(((kb + 512) / 1024)) "$(tail -1 "$WORK/out.txt")"
}

# midcourse DB: steps 1-3 sent to every enrolled subscriber on Nov 28-30
# at 13:00 UTC, every member due for a look.
midcourse() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
days = [("gut-immune-connection", 1795870800), ("gut-barrier", 1795957200), ("imbalanced-microbiome", 1796043600)]
emails = [row[0] for row in db.execute("SELECT email FROM enrollments WHERE sequence = 'gut-immune'")]
with db:
    for step, at in days:
        db.executemany(
            "INSERT INTO deliveries (sequence, email, step, status, attempts, message_id, claimed_at, sent_at)"
            " VALUES ('gut-immune', ?, ?, 'sent', 1, ?, ?, ?)",
            ((email, step, f"<bench.{step}.{i}@example.com>", at, at) for i, email in enumerate(emails)))
    db.execute("UPDATE enrollments SET last_sent_at = 1796043600")
    db.execute("UPDATE members SET next_due_at = 0")
print(f"{len(emails)} subscribers have had 3 emails")
PY
}

echo "dripline $("$DRIPLINE" --version | cut -d' ' -f2), $(nproc) CPUs, $(uname -sr), N = $N"
mid=$WORK/midcourse
project "$mid" 2026-11-28 "$N" 2026-11-28
measure "import the list (nothing due yet)" "$mid" run --now 2026-11-27T12:00:00Z
midcourse "$mid/dripline.db"
measure "first pass after: every member looked at once" "$mid" run --now 2026-11-30T20:00:00Z
# The runs so far were days apart (too far apart for catch_up); this one,
# a cron tick later, sees a new cadence and looks at everyone once more.
measure "a tick later (new cadence: everyone looked at again)" "$mid" run --now 2026-11-30T20:15:00Z
measure "SQLite, nothing due" "$mid" run --now 2026-11-30T21:00:00Z
measure "SQLite, nothing due (again)" "$mid" run --now 2026-11-30T21:05:00Z
# One row changes, keeping its length: the size is the same, the time and content are not.
line=$((N / 2 + 1))
sed -i "${line}s/,Reader /,Zeader /" "$mid/subscribers.csv"
measure "SQLite, nothing due, one row of the list changed" "$mid" run --now 2026-11-30T21:10:00Z
measure "SQLite, nothing due, after that" "$mid" run --now 2026-11-30T21:15:00Z

pg_start "$WORK/pg" "$PG_PORT"
export DRIPLINE_DATABASE_URL
DRIPLINE_DATABASE_URL=$(pg_url scale)
(cd "$mid" && "$DRIPLINE" state copy --to-env DRIPLINE_DATABASE_URL > /dev/null)
sed -i 's/^path = "dripline.db"/url_env = "DRIPLINE_DATABASE_URL"/' "$mid/dripline.toml"
measure "PostgreSQL: first pass after the copy" "$mid" run --now 2026-11-30T20:30:00Z
measure "PostgreSQL, nothing due" "$mid" run --now 2026-11-30T21:00:00Z
measure "PostgreSQL, nothing due (again)" "$mid" run --now 2026-11-30T21:05:00Z
pg_stop

send=$WORK/send
project "$send" 2026-12-01T14:00:00Z 100000 2027-06-01
measure "import the list (nothing due yet)" "$send" run --now 2026-12-01T13:00:00Z
measure "send 100,000 emails from the list, outbox" "$send" run --now 2026-12-01T14:00:00Z
echo "$(find "$send/outbox" -name '*.eml' | wc -l) emails in the outbox"
