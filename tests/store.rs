//! The contract of the `Store` trait, run against both backends: a real
//! SQLite file and a real PostgreSQL database (tests/postgres.rs). What
//! one backend promises, the other does; the PostgreSQL-only tests at the
//! end are about several instances at once, which SQLite's lock forbids.
//! The `Signups` contract is here too (`signups_` tests).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use dripline::store::roster::{DripKey, Member, Roster as _};
use dripline::store::signups::{Mailed, Request, Signups as _};
use dripline::store::{
    self, Access, Claim, DeliveryStatus, Held, Outcome, PendingStatus, PostgresTarget, Quota,
    Reason, StateSettings, StateStore, Store as _,
};

use crate::postgres;

/// A state of one backend, and what keeps it alive.
struct Fixture {
    backend: &'static str,
    settings: StateSettings,
    /// Its database's URL, to look past the store.
    url: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn open(&self) -> StateStore {
        store::open(&self.settings, Access::Send)
            .await
            .unwrap_or_else(|err| panic!("{}: open: {err:#}", self.backend))
    }
}

/// How long a PostgreSQL instance may be silent in these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("state.db");
    Fixture {
        backend: "sqlite",
        url: format!("sqlite:{}", path.display()),
        settings: StateSettings::Sqlite { path },
        _dir: dir,
    }
}

fn postgresql() -> Fixture {
    let url = postgres::database();
    let target = PostgresTarget::new(&url, None, TIMEOUT).expect("target");
    Fixture {
        backend: "postgres",
        settings: StateSettings::Postgres(Box::new(target)),
        url,
        _dir: tempfile::tempdir().expect("temporary directory"),
    }
}

/// The rows of `table`, counted past the store.
async fn rows_in(fixture: &Fixture, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match fixture.settings {
        StateSettings::Sqlite { .. } => {
            let pool = sqlx::SqlitePool::connect(&fixture.url).await.unwrap();
            let rows = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        StateSettings::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&fixture.url).await.unwrap();
            let rows = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    }
}

/// Runs `test` against a fresh state of each backend.
fn contract<F, Fut>(test: F)
where
    F: Fn(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for fixture in [sqlite(), postgresql()] {
        runtime.block_on(test(fixture));
    }
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, hour, 0, 0).unwrap()
}

fn claim(sequence: &str, email: &str, step: &str, day: u32) -> Claim {
    Claim {
        sequence: sequence.to_owned(),
        email: email.to_owned(),
        step: step.to_owned(),
        message_id: format!("<{sequence}.{step}.{email}>"),
        delivery_id: format!("{sequence}-{step}-{email}"),
        day_start: at(day, 0),
    }
}

fn sent() -> Outcome {
    Outcome::Sent {
        reply: "250 ok".to_owned(),
    }
}

async fn enroll(store: &StateStore, sequence: &str, emails: &[&str]) {
    let new: Vec<(String, DateTime<Utc>)> = emails
        .iter()
        .map(|email| ((*email).to_owned(), at(1, 0)))
        .collect();
    store.enroll(sequence, &new).await.expect("enroll");
}

/// Claims one and returns it if won.
async fn claim_one(store: &StateStore, claim: Claim, now: DateTime<Utc>) -> Option<Held> {
    let claimed = store
        .claim(vec![claim], now, Quota::default())
        .await
        .expect("claim");
    claimed.won.into_iter().next()
}

#[test]
fn a_claim_is_won_once_and_a_sent_email_is_never_claimed_again() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org", "b@x.org"]).await;
        let claimed = store
            .claim(
                vec![
                    claim("demo", "a@x.org", "one", 1),
                    claim("demo", "b@x.org", "one", 1),
                ],
                at(1, 8),
                Quota::default(),
            )
            .await
            .unwrap();
        assert_eq!(claimed.won.len(), 2, "{name}");
        assert!(claimed.won.iter().all(|held| held.attempt == 1), "{name}");
        let results: Vec<(Held, Outcome)> =
            claimed.won.into_iter().map(|held| (held, sent())).collect();
        store.record(&results, at(1, 8)).await.unwrap();
        // Another day, the same delivery: sent, so never again.
        assert_eq!(
            claim_one(&store, claim("demo", "a@x.org", "one", 2), at(2, 8)).await,
            None,
            "{name}"
        );
        let state = store.load("demo").await.unwrap();
        assert_eq!(state.enrollments["a@x.org"].sent_steps, ["one"], "{name}");
        assert_eq!(
            state.enrollments["a@x.org"].last_sent_at,
            Some(at(1, 8)),
            "{name}"
        );
        assert!(state.pending.is_empty(), "{name}");
        assert_eq!(
            store.last_sent().await.unwrap()["b@x.org"],
            at(1, 8),
            "{name}"
        );
        // The next step, the next day.
        let next = claim_one(&store, claim("demo", "a@x.org", "two", 2), at(2, 8)).await;
        assert_eq!(next.map(|held| held.attempt), Some(1), "{name}");
        store.close().await;
    });
}

#[test]
fn one_email_a_day_counts_sent_and_in_flight_emails_of_every_sequence() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "first", &["a@x.org", "b@x.org"]).await;
        enroll(&store, "second", &["a@x.org", "b@x.org"]).await;
        let a = claim_one(&store, claim("first", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        store.record(&[(a, sent())], at(1, 8)).await.unwrap();
        // b's first email is in flight, not recorded.
        let b = claim_one(&store, claim("first", "b@x.org", "one", 1), at(1, 8)).await;
        assert!(b.is_some(), "{name}");
        for email in ["a@x.org", "b@x.org"] {
            let other = claim_one(&store, claim("second", email, "one", 1), at(1, 9)).await;
            assert_eq!(
                other, None,
                "{name}: {email} got a second email the same day"
            );
        }
        // The next local day, a@ may have the other sequence's email.
        let next = claim_one(&store, claim("second", "a@x.org", "one", 2), at(2, 8)).await;
        assert!(next.is_some(), "{name}");
        store.close().await;
    });
}

#[test]
fn a_suppressed_address_is_never_claimed_until_resubscribed() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org"]).await;
        assert!(
            store
                .suppress("a@x.org", Reason::Unsubscribed, "by hand", at(1, 7))
                .await
                .unwrap()
        );
        assert!(
            !store
                .suppress("a@x.org", Reason::Bounced, "DSN 5.1.1", at(1, 7))
                .await
                .unwrap()
        );
        assert_eq!(
            claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8)).await,
            None,
            "{name}"
        );
        let suppressions = store.suppressions().await.unwrap();
        assert_eq!(
            suppressions["a@x.org"].reason,
            Reason::Unsubscribed,
            "{name}"
        );
        assert!(store.resubscribe("a@x.org").await.unwrap(), "{name}");
        assert!(
            claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
                .await
                .is_some(),
            "{name}"
        );
        store.close().await;
    });
}

#[test]
fn results_are_fenced_by_attempt_and_sent_always_wins() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org"]).await;
        let first = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        let retry = Outcome::Retry {
            at: at(1, 9),
            reply: "451 later".to_owned(),
        };
        store
            .record(&[(first.clone(), retry.clone())], at(1, 8))
            .await
            .unwrap();
        let second = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 9))
            .await
            .unwrap();
        assert_eq!(second.attempt, 2, "{name}");
        // A late result of the first attempt changes nothing...
        let failed = Outcome::Failed {
            reply: "550 no".to_owned(),
            bounced: true,
        };
        store
            .record(&[(first.clone(), failed)], at(1, 9))
            .await
            .unwrap();
        store
            .record(&[(first.clone(), retry)], at(1, 9))
            .await
            .unwrap();
        let state = store.load("demo").await.unwrap();
        assert_eq!(
            state.pending("a@x.org", "one").unwrap().status,
            PendingStatus::Claimed,
            "{name}"
        );
        // The server did reject the address, whichever attempt heard it.
        let suppressions = store.suppressions().await.unwrap();
        assert_eq!(suppressions["a@x.org"].reason, Reason::Bounced, "{name}");
        // ...to the delivery, but the server took it: sent lands, whichever attempt says so.
        store.record(&[(first, sent())], at(1, 9)).await.unwrap();
        let deliveries = store.deliveries_to("a@x.org").await.unwrap();
        assert_eq!(deliveries[0].status, DeliveryStatus::Sent, "{name}");
        assert_eq!(deliveries[0].attempts, 2, "{name}");
        // Once sent, no later result undoes it.
        store
            .record(
                &[(
                    second,
                    Outcome::Retry {
                        at: at(2, 0),
                        reply: "451".to_owned(),
                    },
                )],
                at(1, 9),
            )
            .await
            .unwrap();
        assert_eq!(
            store.deliveries_to("a@x.org").await.unwrap()[0].status,
            DeliveryStatus::Sent,
            "{name}"
        );
        store.close().await;
    });
}

#[test]
fn a_released_claim_is_due_again_without_spending_an_attempt() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org"]).await;
        let first = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        store.release(&[first]).await.unwrap();
        assert!(
            store.deliveries_to("a@x.org").await.unwrap().is_empty(),
            "{name}"
        );
        let again = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        assert_eq!(again.attempt, 1, "{name}");
        let retry = Outcome::Retry {
            at: at(1, 9),
            reply: "451".to_owned(),
        };
        store.record(&[(again, retry)], at(1, 8)).await.unwrap();
        let second = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 9))
            .await
            .unwrap();
        store.release(&[second]).await.unwrap();
        let state = store.load("demo").await.unwrap();
        let pending = state.pending("a@x.org", "one").unwrap();
        assert_eq!(
            (pending.status, pending.attempts),
            (PendingStatus::Retry(at(1, 9)), 1),
            "{name}"
        );
        store.close().await;
    });
}

#[test]
fn quotas_count_sent_and_in_flight_emails_and_cut_the_batch() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        let emails = ["a@x.org", "b@x.org", "c@x.org", "d@x.org"];
        enroll(&store, "demo", &emails).await;
        let quota = Quota {
            per_hour: 0,
            per_day: 3,
        };
        let first = store
            .claim(vec![claim("demo", emails[0], "one", 1)], at(1, 8), quota)
            .await
            .unwrap();
        let results: Vec<(Held, Outcome)> =
            first.won.into_iter().map(|held| (held, sent())).collect();
        store.record(&results, at(1, 8)).await.unwrap();
        let batch = emails[1..]
            .iter()
            .map(|email| claim("demo", email, "one", 1))
            .collect();
        let claimed = store.claim(batch, at(1, 9), quota).await.unwrap();
        assert_eq!((claimed.won.len(), claimed.over_quota), (2, 1), "{name}");
        assert_eq!(
            store.sent_since(at(1, 0)).await.unwrap(),
            3,
            "{name}: sent + in flight"
        );
        // 24 hours after the first, it no longer counts.
        let later = store
            .claim(
                vec![claim("demo", emails[3], "one", 2)],
                at(2, 8) + chrono::Duration::seconds(1),
                quota,
            )
            .await
            .unwrap();
        assert_eq!(later.won.len(), 1, "{name}");
        store.close().await;
    });
}

#[test]
fn a_claim_left_by_a_process_that_is_gone_is_taken_over_with_its_message_id() {
    contract(|fixture| async move {
        let name = fixture.backend;
        let store = fixture.open().await;
        enroll(&store, "demo", &["a@x.org"]).await;
        claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        store.close().await;
        let next = fixture.open().await;
        let mut asked = claim("demo", "a@x.org", "one", 1);
        asked.message_id = "<a different id>".to_owned();
        let held = claim_one(&next, asked, at(1, 8)).await.unwrap();
        assert_eq!(held.attempt, 2, "{name}");
        let deliveries = next.deliveries_to("a@x.org").await.unwrap();
        assert_eq!(deliveries[0].message_id, "<demo.one.a@x.org>", "{name}");
        next.record(&[(held, sent())], at(1, 8)).await.unwrap();
        let counts = next.step_counts().await.unwrap();
        assert_eq!((counts[0].sent, counts[0].pending), (1, 0), "{name}");
        let run = next.begin_run(at(1, 8)).await.unwrap();
        let counts = store::RunCounts {
            sent: 1,
            failed: 0,
            deferred: 0,
        };
        next.finish_run(run, at(1, 9), counts).await.unwrap();
        let last = next.last_run().await.unwrap().unwrap();
        assert_eq!((last.sent, last.finished_at), (1, Some(at(1, 9))), "{name}");
        next.close().await;
    });
}

/// The token rows a run's claims append are found at once, and filed
/// when it finishes: each id once, the ids of a resend too.
#[test]
fn tokens_resolve_as_soon_as_claimed_and_after_their_run_files_them() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org", "b@x.org"]).await;
        let run = store.begin_run(at(1, 8)).await.unwrap();
        // Claimed and released twice: the same id again, then another (a
        // key rotated meanwhile).
        let rotated = Claim {
            delivery_id: "rotated-id".to_owned(),
            ..claim("demo", "a@x.org", "one", 1)
        };
        for (hour, claim) in [8, 9, 10].into_iter().zip([
            claim("demo", "a@x.org", "one", 1),
            claim("demo", "a@x.org", "one", 1),
            rotated,
        ]) {
            let held = claim_one(&store, claim, at(1, hour)).await.unwrap();
            store.release(&[held]).await.unwrap();
        }
        claim_one(&store, claim("demo", "b@x.org", "one", 1), at(1, 10))
            .await
            .unwrap();
        let lookup = |id: &'static str| {
            let store = &store;
            async move {
                store
                    .addressed(id)
                    .await
                    .unwrap()
                    .map(|found| format!("{}/{}/{}", found.sequence, found.email, found.step))
            }
        };
        let expected = [
            ("demo-one-a@x.org", Some("demo/a@x.org/one".to_owned())),
            ("rotated-id", Some("demo/a@x.org/one".to_owned())),
            ("demo-one-b@x.org", Some("demo/b@x.org/one".to_owned())),
            ("unknown", None),
        ];
        for (id, email) in &expected {
            assert_eq!(&lookup(id).await, email, "{name}: {id} before filing");
        }
        assert_eq!(rows_in(&fixture, "tokens").await, 0, "{name}");
        store
            .finish_run(run, at(1, 11), store::RunCounts::default())
            .await
            .unwrap();
        for (id, email) in &expected {
            assert_eq!(&lookup(id).await, email, "{name}: {id} after filing");
        }
        assert_eq!(rows_in(&fixture, "new_tokens").await, 0, "{name}");
        assert_eq!(rows_in(&fixture, "tokens").await, 3, "{name}: each id once");
        store.close().await;
    });
}

#[test]
fn tokens_suppression_details_and_soft_bounces_are_kept() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        enroll(&store, "demo", &["a@x.org"]).await;
        claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        let addressed = store.addressed("demo-one-a@x.org").await.unwrap().unwrap();
        assert_eq!(
            (
                addressed.sequence.as_str(),
                addressed.email.as_str(),
                addressed.step.as_str()
            ),
            ("demo", "a@x.org", "one"),
            "{name}"
        );
        assert_eq!(store.addressed("unknown").await.unwrap(), None, "{name}");
        store
            .suppress("a@x.org", Reason::Complained, "ARF abuse report", at(1, 9))
            .await
            .unwrap();
        let suppression = &store.suppressions().await.unwrap()["a@x.org"];
        assert_eq!(
            (suppression.reason, suppression.detail.as_str()),
            (Reason::Complained, "ARF abuse report"),
            "{name}"
        );
        let bounce = |reference: &'static str, day: u32| {
            let store = &store;
            async move {
                store
                    .soft_bounce("a@x.org", reference, at(day, 0), at(1, 0))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(bounce("demo/one", 2).await, 1, "{name}");
        assert_eq!(
            bounce("demo/one", 3).await,
            1,
            "{name}: the same email counts once"
        );
        assert_eq!(bounce("demo/two", 3).await, 2, "{name}");
        assert!(store.resubscribe("a@x.org").await.unwrap(), "{name}");
        assert_eq!(bounce("demo/two", 4).await, 1, "{name}: a fresh start");
        store.close().await;
    });
}

/// PostgreSQL: a live instance keeps its claims; one that stopped
/// beating loses them to the others, and can no longer claim itself.
/// A trip to the SQLite store whose statements fail halfway (a trigger
/// refuses its token rows, after the sent email was recorded) keeps
/// nothing of what it carried, and the next trip goes through as if it
/// had never been: its transaction was rolled back, not left open.
#[test]
fn sqlite_a_trip_that_fails_halfway_keeps_nothing_and_the_next_one_goes_through() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fixture = sqlite();
        let store = fixture.open().await;
        enroll(&store, "demo", &["a@x.org", "b@x.org"]).await;
        let a = claim_one(&store, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        let StateSettings::Sqlite { path } = &fixture.settings else {
            unreachable!("an SQLite fixture")
        };
        let other = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON new_tokens
                      BEGIN SELECT RAISE(ABORT, 'tokens refused'); END";
        sqlx::raw_sql(refuse).execute(&other).await.unwrap();
        let results = [(a, sent())];
        let trip = || {
            store.settle(
                &results,
                &[],
                vec![claim("demo", "b@x.org", "one", 1)],
                at(1, 8),
                Quota::default(),
            )
        };
        let err = trip().await.unwrap_err();
        assert!(format!("{err:#}").contains("tokens refused"), "{err:#}");
        let a_now = store.deliveries_to("a@x.org").await.unwrap();
        assert_eq!(a_now[0].status, DeliveryStatus::Claimed, "recorded anyway");
        assert!(store.deliveries_to("b@x.org").await.unwrap().is_empty());

        sqlx::raw_sql("DROP TRIGGER refuse")
            .execute(&other)
            .await
            .unwrap();
        let claimed = trip().await.expect("the next trip");
        assert_eq!(claimed.won.len(), 1);
        let a_now = store.deliveries_to("a@x.org").await.unwrap();
        assert_eq!(a_now[0].status, DeliveryStatus::Sent);
        let b_now = store.deliveries_to("b@x.org").await.unwrap();
        assert_eq!(b_now[0].status, DeliveryStatus::Claimed);
        other.close().await;
        store.close().await;
    });
}

#[test]
fn postgres_a_live_instance_keeps_its_claims_and_a_silent_one_loses_them() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fixture = postgresql();
        let first = fixture.open().await;
        let second = fixture.open().await;
        enroll(&first, "demo", &["a@x.org"]).await;
        claim_one(&first, claim("demo", "a@x.org", "one", 1), at(1, 8))
            .await
            .unwrap();
        assert_eq!(
            claim_one(&second, claim("demo", "a@x.org", "one", 1), at(1, 8)).await,
            None,
            "the claim of a live instance was taken"
        );
        let instances = second.instances().await.unwrap();
        assert_eq!(instances.len(), 2);
        assert_eq!(instances.iter().map(|i| i.in_flight).sum::<u64>(), 1);
        assert!(instances.iter().all(|i| i.alive));
        // Dropped without closing: its heartbeat stops, its row stays.
        drop(first);
        tokio::time::sleep(TIMEOUT + Duration::from_millis(700)).await;
        let held = claim_one(&second, claim("demo", "a@x.org", "one", 1), at(1, 8)).await;
        assert_eq!(held.map(|held| held.attempt), Some(2));
        let silent = second.instances().await.unwrap();
        assert_eq!(silent.iter().filter(|i| !i.alive).count(), 1);
        second.close().await;
    });
}

/// PostgreSQL: many instances claiming the same batch at once win each
/// delivery exactly once.
#[test]
fn postgres_instances_racing_for_one_batch_win_each_delivery_once() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fixture = postgresql();
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(fixture.open().await);
        }
        let emails: Vec<String> = (0..300).map(|n| format!("r{n}@x.org")).collect();
        let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
        enroll(&stores[0], "demo", &refs).await;
        let batch: Vec<Claim> = emails
            .iter()
            .map(|email| claim("demo", email, "one", 1))
            .collect();
        let mut total = 0;
        for _round in 0..3 {
            let claims = futures_util::future::join_all(
                stores
                    .iter()
                    .map(|store| store.claim(batch.clone(), at(1, 8), Quota::default())),
            )
            .await;
            total += claims
                .into_iter()
                .map(|claimed| claimed.unwrap().won.len())
                .sum::<usize>();
        }
        assert_eq!(total, 300, "each delivery exactly once");
        for store in stores {
            store.close().await;
        }
    });
}

/// A signup request of `email` on `gut` at `now` seconds, its link
/// working for 100 seconds.
fn signup_request(email: &str, token_id: &str, now: i64) -> Request {
    Request {
        sequence: "gut".into(),
        email: email.to_lowercase(),
        address: email.into(),
        name: Some("Ada".into()),
        timezone: Some("Europe/Paris".into()),
        fields: BTreeMap::from([("company".into(), "ACME".into())]),
        token_id: token_id.into(),
        at: seconds(now),
        ip: "192.0.2.1".into(),
        form: "hosted".into(),
        expires_at: seconds(now + 100),
    }
}

fn seconds(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

#[test]
fn signups_a_request_is_mailed_once_confirmed_once_and_enrolled() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        store
            .request(&signup_request("Ada@Example.com", "t1", 1000))
            .await
            .unwrap();
        let standing = store.standing("gut", "ada@example.com").await.unwrap();
        assert_eq!(standing.map(|s| s.confirmed_at), Some(None), "{name}");
        assert_eq!(store.pending_count("gut", seconds(1050)).await.unwrap(), 1);
        assert_eq!(
            store.pending_count("gut", seconds(1100)).await.unwrap(),
            0,
            "{name}: expired"
        );

        let outgoing = store.take_outgoing(10).await.unwrap();
        assert_eq!(outgoing.len(), 1, "{name}");
        assert_eq!(
            (outgoing[0].address.as_str(), outgoing[0].attempt),
            ("Ada@Example.com", 1),
            "{name}"
        );
        assert!(
            store.take_outgoing(10).await.unwrap().is_empty(),
            "{name}: taken once"
        );
        store
            .mailed("t1", Mailed::Sent, seconds(1001))
            .await
            .unwrap();
        assert_eq!(store.mailed_since(seconds(1000)).await.unwrap(), 1);

        assert!(
            !store
                .confirm("t1", seconds(1200), "192.0.2.9")
                .await
                .unwrap(),
            "{name}: expired link"
        );
        assert!(
            store
                .confirm("t1", seconds(1010), "192.0.2.9")
                .await
                .unwrap()
        );
        assert!(
            !store
                .confirm("t1", seconds(1011), "192.0.2.9")
                .await
                .unwrap(),
            "{name}: once"
        );
        let pointed = store.pointed("t1").await.unwrap().unwrap();
        assert_eq!(pointed.confirmed_at, Some(seconds(1010)), "{name}");
        let confirmed = store.confirmed("gut").await.unwrap();
        assert_eq!(confirmed.len(), 1, "{name}");
        assert_eq!(
            (
                confirmed[0].confirmed_ip.as_str(),
                confirmed[0].confirmed_form.as_str(),
                confirmed[0].confirmed_at,
            ),
            ("192.0.2.9", "hosted", seconds(1010)),
            "{name}: the consent"
        );
        assert_eq!(
            confirmed[0].fields.get("company").map(String::as_str),
            Some("ACME"),
            "{name}"
        );
        let state = store.load("gut").await.unwrap();
        assert_eq!(
            state.enrollments["ada@example.com"].enrolled_at,
            seconds(1010),
            "{name}: the clock starts at the confirmation"
        );
        let counts = store.signup_counts(seconds(1020)).await.unwrap();
        assert_eq!((counts[0].confirmed, counts[0].pending), (1, 0), "{name}");

        // A pass adds to a roster only the signups it does not hold yet.
        let drip = DripKey {
            sequence: "gut".to_owned(),
            list: "list.csv".to_owned(),
        };
        let outside = store.confirmed_outside(&drip).await.unwrap();
        assert_eq!(outside.len(), 1, "{name}: not in the roster yet");
        let member = Member {
            email: "ada@example.com".to_owned(),
            row_hash: None,
            active: true,
            row: "{}".to_owned(),
            position: i64::MAX,
        };
        assert_eq!(store.add_absent(&drip, &[member]).await.unwrap(), 1);
        assert!(
            store.confirmed_outside(&drip).await.unwrap().is_empty(),
            "{name}: in the roster, not read again"
        );
        let other = DripKey {
            list: "other.csv".to_owned(),
            ..drip
        };
        assert_eq!(
            store.confirmed_outside(&other).await.unwrap().len(),
            1,
            "{name}: another list's roster does not hold it"
        );
        store.close().await;
    });
}

#[test]
fn signups_confirming_again_lifts_an_unsubscribe_but_never_a_bounce() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        for (email, reason) in [
            ("u@example.com", Reason::Unsubscribed),
            ("b@example.com", Reason::Bounced),
        ] {
            store
                .suppress(email, reason, "by hand", seconds(10))
                .await
                .unwrap();
            store
                .request(&signup_request(email, email, 1000))
                .await
                .unwrap();
            assert!(
                store
                    .confirm(email, seconds(1001), "192.0.2.9")
                    .await
                    .unwrap()
            );
        }
        let left: Vec<String> = store.suppressions().await.unwrap().into_keys().collect();
        assert_eq!(left, ["b@example.com"], "{name}");
        assert_eq!(
            store.suppression_reason("b@example.com").await.unwrap(),
            Some("bounced".to_owned()),
            "{name}"
        );
        store.close().await;
    });
}

#[test]
fn signups_a_retried_or_failed_confirmation_email_goes_again_or_never() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        store
            .request(&signup_request("a@example.com", "t1", 1000))
            .await
            .unwrap();
        assert_eq!(store.take_outgoing(10).await.unwrap().len(), 1, "{name}");
        store
            .mailed("t1", Mailed::Retry, seconds(1001))
            .await
            .unwrap();
        let again = store.take_outgoing(10).await.unwrap();
        assert_eq!(again.iter().map(|o| o.attempt).collect::<Vec<_>>(), [2]);
        store
            .mailed("t1", Mailed::Failed, seconds(1002))
            .await
            .unwrap();
        assert!(store.take_outgoing(10).await.unwrap().is_empty(), "{name}");
        assert_eq!(store.mailed_since(seconds(0)).await.unwrap(), 0, "{name}");
        // A new request of the same address starts over.
        store
            .request(&signup_request("a@example.com", "t2", 2000))
            .await
            .unwrap();
        let fresh = store.take_outgoing(10).await.unwrap();
        assert_eq!(
            fresh
                .iter()
                .map(|o| (o.token_id.as_str(), o.attempt))
                .collect::<Vec<_>>(),
            [("t2", 1)],
            "{name}"
        );
        store.close().await;
    });
}

#[test]
fn signups_confirmations_sent_spend_the_claim_quota() {
    contract(|fixture| async move {
        let store = fixture.open().await;
        let name = fixture.backend;
        let now = at(1, 9);
        let mut request = signup_request("c@example.com", "t1", now.timestamp() - 60);
        request.expires_at = now + chrono::Duration::days(1);
        store.request(&request).await.unwrap();
        store.take_outgoing(1).await.unwrap();
        store
            .mailed("t1", Mailed::Sent, now - chrono::Duration::minutes(1))
            .await
            .unwrap();
        enroll(&store, "demo", &["a@x.org", "b@x.org"]).await;
        let quota = Quota {
            per_hour: 2,
            per_day: 0,
        };
        let batch = vec![
            claim("demo", "a@x.org", "one", 1),
            claim("demo", "b@x.org", "one", 1),
        ];
        let claimed = store.claim(batch, now, quota).await.unwrap();
        assert_eq!(
            (claimed.won.len(), claimed.over_quota),
            (1, 1),
            "{name}: the confirmation used one of the two"
        );
        store.close().await;
    });
}

/// PostgreSQL: instances confirming one link at once enroll it once, and
/// instances taking confirmation emails at once take each once.
#[test]
fn postgres_instances_racing_on_signups_confirm_and_mail_each_once() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let fixture = postgresql();
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(fixture.open().await);
        }
        for n in 0..40 {
            let email = format!("s{n}@example.com");
            stores[0]
                .request(&signup_request(&email, &email, 1000))
                .await
                .unwrap();
        }
        let taken =
            futures_util::future::join_all(stores.iter().map(|store| store.take_outgoing(15)))
                .await;
        let mut tokens: Vec<String> = taken
            .into_iter()
            .flat_map(|taken| taken.unwrap())
            .map(|outgoing| outgoing.token_id)
            .collect();
        tokens.sort();
        let before = tokens.len();
        tokens.dedup();
        assert_eq!((before, tokens.len()), (40, 40), "each email taken once");
        let confirms = futures_util::future::join_all(
            stores
                .iter()
                .map(|store| store.confirm("s7@example.com", seconds(1010), "192.0.2.9")),
        )
        .await;
        let won = confirms
            .into_iter()
            .filter(|confirmed| *confirmed.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "one confirmation wins");
        let state = stores[1].load("gut").await.unwrap();
        assert_eq!(state.enrollments.len(), 1);
        for store in stores {
            store.close().await;
        }
    });
}
