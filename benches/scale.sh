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
#      under 150 MB;
#   3. `dripline state copy` of the mid-course SQLite state (N members, 3N
#      deliveries) into an empty PostgreSQL database: its time and memory.
#
# The mid-course state is made the way it would be after three mornings:
# one run imports the list (nobody is due yet), then the three sent steps
# are written into the state with SQL (Python's sqlite3, psql), and every
# member is made due for a look, as after an upgrade; the passes after that
# look at all of them once (their times are printed too), the ones after
# them are the figures. Each figure is wall time and peak RSS from GNU time.
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

# The mid-course state: steps 1-3 sent to every enrolled subscriber on
# Nov 28-30 at 13:00 UTC (epoch seconds below), every member due for a look.
STEPS="('gut-immune-connection', 1795870800), ('gut-barrier', 1795957200), ('imbalanced-microbiome', 1796043600)"
LAST_SENT=1796043600

# midcourse_sqlite DB
midcourse_sqlite() {
    python3 - "$1" "$STEPS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with db:
    db.execute(f"""INSERT INTO deliveries (sequence, email, step, status, attempts, message_id, claimed_at, sent_at)
        SELECT 'gut-immune', e.email, s.column1, 'sent', 1, '<bench.' || s.column1 || '.' || e.email || '>', s.column2, s.column2
        FROM enrollments e, (VALUES {sys.argv[2]}) s""")
    db.execute("UPDATE members SET next_due_at = 0")
print(db.execute("SELECT count(*) FROM deliveries").fetchone()[0], "emails sent before")
PY
}

# midcourse_postgres URL (PostgreSQL keeps the last send per address in `recipients`)
midcourse_postgres() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$1" <<SQL
INSERT INTO deliveries (sequence, email, step, status, attempts, message_id, claimed_at, claimed_by, sent_at)
    SELECT 'gut-immune', e.email, s.step, 'sent', 1, '<bench.' || s.step || '.' || e.email || '>', s.at, 'bench', s.at
    FROM enrollments e, (VALUES $STEPS) AS s (step, at);
INSERT INTO recipients (email, last_sent_at) SELECT email, $LAST_SENT FROM enrollments
    ON CONFLICT (email) DO UPDATE SET last_sent_at = excluded.last_sent_at;
UPDATE members SET next_due_at = 0;
SQL
}

# The same course on a store: import, three mornings, then the passes measured.
# midcourse_passes LABEL DIR MIDCOURSE_COMMAND...
midcourse_passes() {
    local label=$1 dir=$2
    shift 2
    measure "$label: import the list (nothing due yet)" "$dir" run --now 2026-11-27T12:00:00Z
    "$@"
    measure "$label: first pass after: every member looked at" "$dir" run --now 2026-11-30T20:00:00Z
    # The runs so far were days apart (too far apart for catch_up); this one,
    # a cron tick later, sees a new cadence and looks at everyone once more.
    measure "$label: a tick later (new cadence: all looked at)" "$dir" run --now 2026-11-30T20:15:00Z
    measure "$label: nothing due" "$dir" run --now 2026-11-30T21:00:00Z
    measure "$label: nothing due (again)" "$dir" run --now 2026-11-30T21:05:00Z
}

echo "dripline $("$DRIPLINE" --version | cut -d' ' -f2), $(nproc) CPUs, $(uname -sr), N = $N"
mid=$WORK/sqlite
project "$mid" 2026-11-28 "$N" 2026-11-28
midcourse_passes SQLite "$mid" midcourse_sqlite "$mid/dripline.db"
# One row changes, keeping its length: the size is the same, the time and content are not.
line=$((N / 2 + 1))
sed -i "${line}s/,Reader /,Zeader /" "$mid/subscribers.csv"
measure "SQLite: nothing due, one row of the list changed" "$mid" run --now 2026-11-30T21:10:00Z
measure "SQLite: nothing due, after that" "$mid" run --now 2026-11-30T21:15:00Z

pg_start "$WORK/pg" "$PG_PORT"
export DRIPLINE_DATABASE_URL
DRIPLINE_DATABASE_URL=$(pg_url scale)
pg=$WORK/postgres
project "$pg" 2026-11-28 "$N" 2026-11-28
sed -i 's/^path = "dripline.db"/url_env = "DRIPLINE_DATABASE_URL"/' "$pg/dripline.toml"
midcourse_passes PostgreSQL "$pg" midcourse_postgres "$DRIPLINE_DATABASE_URL"
# The SQLite state of the first project (N members, 3N deliveries and
# their tokens) moved into an empty database.
measure "state copy: the SQLite state into an empty PostgreSQL" "$mid" state copy --to "$(pg_url copied)"
pg_stop

send=$WORK/send
SEND=$((N < 100000 ? N : 100000))
project "$send" 2026-12-01T14:00:00Z "$SEND" 2027-06-01
measure "send: import the list (nothing due yet)" "$send" run --now 2026-12-01T13:00:00Z
measure "send: $SEND emails from the list, outbox" "$send" run --now 2026-12-01T14:00:00Z
echo "$(find "$send/outbox" -name '*.eml' | wc -l) emails in the outbox"
