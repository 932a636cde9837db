//! The emails of one slice on their way: claimed ahead of the wire,
//! rendered as they are handed over, recorded as the server answers.
//!
//! At most [`BATCH`] emails are ever handed over and not yet recorded:
//! the most a crash can send twice (DESIGN.md section 8). Within that
//! bound the sessions never wait for the store: while it commits the
//! answers that came back and claims what comes next, the other sessions
//! go on sending. One trip to the store is under way at a time.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures_util::future::{Fuse, FusedFuture as _, FutureExt as _};
use futures_util::stream::{FuturesUnordered, StreamExt as _};

use super::{BATCH, Due, Looks, Pass, Selection, Summary, backoff};
use crate::delivery::{DeliveryError, Parcel, Transport, Unreachable};
use crate::render::Renderer;
use crate::schedule::{self, due::Candidate};
use crate::sequence::Sequence;
use crate::store::roster::Roster;
use crate::store::signups::Signups;
use crate::store::{Claim, Held, Outcome, Quota, Store};

/// Answers in a row that found the server unreachable, after which the
/// pass stops instead of handing over more.
const UNREACHABLE_LIMIT: usize = 3;

/// A claimed email, not handed over yet.
struct Waiting<'a> {
    held: Held,
    due: Due<'a>,
}

/// A claimed and rendered email, handed over.
struct Ready {
    held: Held,
    parcel: Parcel,
    /// When the subscriber's next email is due once this one is sent.
    next_if_sent: Option<DateTime<Utc>>,
}

/// What the server's answers leave for the store.
#[derive(Default)]
struct Answers {
    records: Vec<(Held, Outcome)>,
    /// Never reached the server (or never handed over): due again, no
    /// attempt spent.
    released: Vec<Held>,
    /// How many of these came back from the wire.
    from_wire: usize,
}

impl Answers {
    fn len(&self) -> usize {
        self.records.len() + self.released.len()
    }
}

/// What one trip to the store did.
struct Settled<'a> {
    /// Answers from the wire now recorded (or released).
    from_wire: usize,
    won: Vec<Waiting<'a>>,
    over_quota: u64,
}

/// Whether a handed-over email reached the server.
enum Reached {
    /// It did, whatever the server said.
    Yes,
    /// It did not: no session, or the connection broke before the server
    /// took it.
    No(String),
    /// The server refused the sender or the session, not the recipient:
    /// nothing more can go out until the operator acts.
    Refused(String),
}

/// Why a pass stops handing over.
enum Halt {
    /// Asked to (`stop`).
    Stopped,
    /// The server cannot be reached, or refused the sender or the session.
    Unreachable(String),
}

/// Where the emails of a slice stand, between the selection, the store
/// and the wire.
struct Flight<'a> {
    /// Claimed, not handed over yet, in the order picked.
    waiting: VecDeque<Waiting<'a>>,
    /// Back from the wire (or never handed over), not yet in the store.
    answers: Answers,
    handed_over: usize,
    /// Handed over and not yet recorded: at most [`BATCH`].
    unrecorded: usize,
    /// Answers since the last one that reached the server.
    unreachable_in_row: usize,
    /// Whether the selection may have more to claim.
    more: bool,
    halt: Option<Halt>,
}

impl<'a> Flight<'a> {
    fn new() -> Self {
        Flight {
            waiting: VecDeque::new(),
            answers: Answers::default(),
            handed_over: 0,
            unrecorded: 0,
            unreachable_in_row: 0,
            more: true,
            halt: None,
        }
    }

    /// Stops handing over once `stop` is set: what is claimed and not
    /// handed over goes back to due.
    fn heed(&mut self, stop: &AtomicBool) {
        if self.halt.is_none() && stop.load(Ordering::Acquire) {
            self.halt = Some(Halt::Stopped);
        }
        if self.halt.is_some() {
            let unsent = self.waiting.drain(..).map(|waiting| waiting.held);
            self.answers.released.extend(unsent);
        }
    }

    /// The next email to hand over, if fewer than `in_flight` are on the
    /// wire and a crash then would still send at most [`BATCH`] twice.
    fn next(&mut self, on_wire: usize, in_flight: usize) -> Option<Waiting<'a>> {
        if self.has_room(on_wire, in_flight) {
            self.waiting.pop_front()
        } else {
            None
        }
    }

    fn has_room(&self, on_wire: usize, in_flight: usize) -> bool {
        on_wire < in_flight && self.unrecorded < BATCH
    }

    fn handed(&mut self) {
        self.handed_over += 1;
        self.unrecorded += 1;
    }

    /// Whether to claim the next batch now: a batch ahead of the wire.
    fn wants_claims(&self) -> bool {
        self.halt.is_none() && self.more && self.waiting.len() < BATCH
    }

    /// Whether the answers should go to the store now: enough of them to
    /// be worth a commit, or nothing else would make room or progress.
    fn wants_record(&self, on_wire: usize) -> bool {
        let answers = self.answers.len();
        answers >= BATCH / 2
            || (answers > 0 && (on_wire == 0 || self.unrecorded >= BATCH || self.halt.is_some()))
    }

    /// Whether nothing is left to hand over.
    fn drained(&self) -> bool {
        self.waiting.is_empty() || self.halt.is_some()
    }

    /// Takes in what an answer said of the server: the pass stops when it
    /// refused the sender or the session, or when the last few answers in a
    /// row (every one, when fewer were handed over) did not reach it.
    fn heard(&mut self, reached: Reached) {
        match reached {
            Reached::Yes => self.unreachable_in_row = 0,
            Reached::Refused(reason) => {
                self.unreachable_in_row += 1;
                self.halt = Some(Halt::Unreachable(reason));
            }
            Reached::No(reason) => {
                self.unreachable_in_row += 1;
                let gone = self.unreachable_in_row >= UNREACHABLE_LIMIT.min(self.handed_over);
                if gone && !matches!(self.halt, Some(Halt::Unreachable(_))) {
                    self.halt = Some(Halt::Unreachable(reason));
                }
            }
        }
    }

    fn settled(&mut self, settled: Settled<'a>) {
        self.unrecorded -= settled.from_wire;
        self.waiting.extend(settled.won);
    }

    /// How the slice ended.
    fn end(self, summary: &mut Summary) -> anyhow::Result<()> {
        match self.halt {
            Some(Halt::Unreachable(reason)) => Err(Unreachable(format!(
                "{reason}\nThe run stopped after {} sent; every email not sent stays due for the next run.",
                summary.sent
            ))
            .into()),
            Some(Halt::Stopped) => {
                summary.stopped = true;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl<S: Store + Signups + Roster + Sync, T: Transport> Pass<'_, S, T> {
    /// Claims, renders, sends and records what `selection` picks. Claims
    /// run a batch ahead; an email is rendered when a session is free for
    /// it; answers are recorded while the other sessions keep sending.
    pub(super) async fn send<'a, I: Iterator<Item = Candidate<'a>>>(
        &self,
        sequence: &Sequence,
        renderer: &Renderer,
        selection: &mut Selection<'a, '_, I>,
        summary: &mut Summary,
        looks: &mut Looks,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        // Twice the sessions: each can have its next email waiting, whose
        // commands then go out with the end of its message.
        let in_flight = 2 * self.project.config.delivery.concurrency.get() as usize;
        let mut flight = Flight::new();
        let mut on_wire = FuturesUnordered::new();
        let mut settling = pin!(Fuse::terminated());
        loop {
            flight.heed(stop);
            while let Some(next) = flight.next(on_wire.len(), in_flight) {
                let unrendered = &mut flight.answers.released;
                if let Some(ready) = self.render(renderer, sequence, next, summary, unrendered) {
                    flight.handed();
                    on_wire.push(self.hand_over(ready));
                }
            }
            if settling.is_terminated() {
                let mut batch = Vec::new();
                if flight.wants_claims() {
                    batch = selection.next_batch();
                    flight.more = !batch.is_empty();
                }
                if !batch.is_empty() || flight.wants_record(on_wire.len()) {
                    let answers = std::mem::take(&mut flight.answers);
                    settling.set(self.settle(sequence, renderer, answers, batch).fuse());
                }
            }
            if settling.is_terminated() && on_wire.is_empty() && flight.drained() {
                return flight.end(summary);
            }
            tokio::select! {
                Some((ready, result)) = on_wire.next() => {
                    let reached = self.answer(ready, result, summary, looks, &mut flight.answers);
                    flight.heard(reached);
                }
                settled = &mut settling, if !settling.is_terminated() => {
                    let settled = settled?;
                    summary.deferred += settled.over_quota;
                    flight.settled(settled);
                    if let Some(progress) = self.progress {
                        progress.update(summary);
                    }
                }
            }
        }
    }
}

impl<S: Store + Signups + Roster + Sync, T: Transport> Pass<'_, S, T> {
    /// The hour and day limits of `[delivery]`.
    fn quota(&self) -> Quota {
        let delivery = &self.project.config.delivery;
        Quota {
            per_hour: delivery.max_per_hour,
            per_day: delivery.max_per_day,
        }
    }

    /// One trip to the store: records `answers`, then claims `batch` and
    /// pairs the claims won with what they are for.
    async fn settle<'a>(
        &self,
        sequence: &Sequence,
        renderer: &Renderer,
        answers: Answers,
        batch: Vec<Due<'a>>,
    ) -> anyhow::Result<Settled<'a>> {
        // The claim and its local day: when the batch really goes out.
        let now = self.clock.now();
        let claims = batch
            .iter()
            .map(|due| {
                let step = &sequence.steps[due.step].id;
                let address = due.subscriber.email.as_ref();
                Claim {
                    sequence: sequence.id.clone(),
                    email: due.key.clone(),
                    step: step.clone(),
                    message_id: renderer.message_id(step, address),
                    delivery_id: renderer.delivery_id(step, address),
                    day_start: schedule::day_start(now, due.zone),
                }
            })
            .collect();
        let claimed = self
            .store
            .settle(
                &answers.records,
                &answers.released,
                claims,
                now,
                self.quota(),
            )
            .await?;
        // The claims won come in the order asked, each subscriber once.
        let mut dues = batch.into_iter();
        let won = claimed
            .won
            .into_iter()
            .filter_map(|held| {
                let due = dues.find(|due| due.key == held.claim.email)?;
                Some(Waiting { held, due })
            })
            .collect();
        Ok(Settled {
            from_wire: answers.from_wire,
            won,
            over_quota: claimed.over_quota,
        })
    }

    /// Renders a claimed email, dated now; its next email is the one the
    /// pass expects after it. One that cannot be rendered is counted
    /// failed and goes to `unrendered`, to be released: it stays due.
    fn render(
        &self,
        renderer: &Renderer,
        sequence: &Sequence,
        waiting: Waiting<'_>,
        summary: &mut Summary,
        unrendered: &mut Vec<Held>,
    ) -> Option<Ready> {
        let Waiting { held, due } = waiting;
        let now = self.clock.now();
        let next_date = due
            .next_if_sent
            .map(|at| at.with_timezone(&due.zone).date_naive());
        let rendered = renderer.render(
            due.step,
            due.subscriber,
            next_date,
            // Local, so that "Tomorrow" means the subscriber's tomorrow.
            now.with_timezone(&due.zone).fixed_offset(),
            false,
        );
        match rendered {
            Ok(email) => Some(Ready {
                held,
                parcel: Parcel {
                    from: self
                        .project
                        .config
                        .envelope_sender(Some(&email.bounce_token)),
                    to: due.subscriber.email.clone(),
                    bytes: email.message.bytes,
                    message_id: email.message_id,
                },
                next_if_sent: due.next_if_sent,
            }),
            Err(err) => {
                summary.failed += 1;
                tracing::error!(
                    "cannot render {} step {} for {}: {err}; it stays due: fix the template and run again",
                    sequence.id,
                    due.step + 1,
                    due.subscriber.email
                );
                unrendered.push(held);
                None
            }
        }
    }

    /// Hands a rendered email to the transport; the answer comes with it.
    async fn hand_over(&self, ready: Ready) -> (Ready, Result<String, DeliveryError>) {
        let result = self.transport.send(&ready.parcel).await;
        (ready, result)
    }

    /// Turns what the transport said into what the store must record (or
    /// release), counts it in `summary`, and notes in `looks` when the
    /// subscriber is next worth a look.
    fn answer(
        &self,
        ready: Ready,
        result: Result<String, DeliveryError>,
        summary: &mut Summary,
        looks: &mut Looks,
        answers: &mut Answers,
    ) -> Reached {
        let Ready {
            held,
            parcel,
            next_if_sent,
        } = ready;
        let now = self.clock.now();
        let max_attempts = self.project.config.delivery.max_attempts.get();
        let (claim, attempt) = (&held.claim, held.attempt);
        answers.from_wire += 1;
        let outcome = match result {
            Err(DeliveryError::Unreachable(reason)) => {
                answers.released.push(held);
                return Reached::No(reason);
            }
            Err(DeliveryError::Refused(reason)) => {
                let reason = format!("cannot send {}/{}: {reason}", claim.sequence, claim.step);
                answers.released.push(held);
                return Reached::Refused(reason);
            }
            Ok(reply) => {
                summary.sent += 1;
                tracing::debug!(
                    "sent {}/{} to {}: {reply}",
                    claim.sequence,
                    claim.step,
                    parcel.to
                );
                Outcome::Sent { reply }
            }
            Err(DeliveryError::Transient(reply)) if attempt < max_attempts => {
                summary.retrying += 1;
                let at = now + backoff(attempt);
                tracing::warn!(
                    "{}/{} to {} will be retried from {at}: {reply}",
                    claim.sequence,
                    claim.step,
                    parcel.to
                );
                Outcome::Retry { at, reply }
            }
            Err(DeliveryError::Transient(reply)) => {
                summary.failed += 1;
                tracing::error!(
                    "{}/{} to {} failed {attempt} times, giving up: {reply}",
                    claim.sequence,
                    claim.step,
                    parcel.to
                );
                Outcome::Failed {
                    reply,
                    bounced: false,
                }
            }
            Err(DeliveryError::Permanent { reply, recipient }) => {
                summary.failed += 1;
                tracing::error!(
                    "{}/{} to {} failed for good: {reply}",
                    claim.sequence,
                    claim.step,
                    parcel.to
                );
                Outcome::Failed {
                    reply,
                    bounced: recipient,
                }
            }
        };
        let next = match &outcome {
            Outcome::Sent { .. } => next_if_sent,
            Outcome::Retry { at, .. } => Some(*at),
            Outcome::Failed { .. } => None,
        };
        looks.push((claim.email.clone(), next));
        answers.records.push((held, outcome));
        Reached::Yes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight_with(handed_over: usize) -> Flight<'static> {
        let mut flight = Flight::new();
        for _ in 0..handed_over {
            flight.handed();
        }
        flight
    }

    fn answered(flight: &mut Flight<'_>, count: usize) {
        for _ in 0..count {
            flight.answers.records.push((
                Held {
                    claim: Claim {
                        sequence: "demo".into(),
                        email: "ada@example.com".into(),
                        step: "one".into(),
                        message_id: "<id>".into(),
                        delivery_id: "id".into(),
                        day_start: DateTime::UNIX_EPOCH,
                    },
                    attempt: 1,
                },
                Outcome::Sent {
                    reply: "250".into(),
                },
            ));
            flight.answers.from_wire += 1;
        }
    }

    #[test]
    fn no_more_is_handed_over_while_a_batch_is_unrecorded_whatever_the_sessions() {
        let mut flight = flight_with(BATCH - 1);
        assert!(flight.has_room(0, 100));
        flight.handed();
        assert!(!flight.has_room(0, 100), "{BATCH} unrecorded");
        assert!(!flight_with(3).has_room(16, 16), "every session busy");
        // Recorded answers make room again; answers still on their way to
        // the store do not.
        answered(&mut flight, 10);
        assert!(!flight.has_room(0, 100));
        let answers = std::mem::take(&mut flight.answers);
        flight.settled(Settled {
            from_wire: answers.from_wire,
            won: Vec::new(),
            over_quota: 0,
        });
        assert!(flight.has_room(0, 100));
        assert_eq!(flight.unrecorded, BATCH - 10);
    }

    #[test]
    fn answers_wait_for_half_a_batch_unless_nothing_else_can_move() {
        let mut flight = flight_with(20);
        answered(&mut flight, BATCH / 2 - 1);
        assert!(!flight.wants_record(5), "sessions busy, room left");
        assert!(flight.wants_record(0), "nothing on the wire");
        answered(&mut flight, 1);
        assert!(flight.wants_record(5));
        assert!(!flight_with(BATCH).wants_record(0), "nothing to record");
    }

    #[test]
    fn the_server_is_gone_after_three_unreachable_answers_in_a_row_or_a_refusal() {
        let unreachable = || Reached::No("connection refused".into());
        let mut flight = flight_with(10);
        flight.heard(unreachable());
        flight.heard(unreachable());
        flight.heard(Reached::Yes);
        flight.heard(unreachable());
        flight.heard(unreachable());
        assert!(flight.halt.is_none(), "a success between them");
        flight.heard(unreachable());
        assert!(
            matches!(&flight.halt, Some(Halt::Unreachable(reason)) if reason == "connection refused")
        );

        let mut small = flight_with(2);
        small.heard(unreachable());
        assert!(small.halt.is_none());
        small.heard(unreachable());
        assert!(small.halt.is_some(), "every one of two handed over");

        let mut refused = flight_with(10);
        refused.heard(Reached::Refused("550 sender rejected".into()));
        assert!(
            matches!(&refused.halt, Some(Halt::Unreachable(reason)) if reason == "550 sender rejected")
        );
    }

    #[test]
    fn a_stop_ends_claiming_and_handing_over() {
        let mut flight = flight_with(0);
        let stop = AtomicBool::new(false);
        flight.heed(&stop);
        assert!(flight.wants_claims());
        stop.store(true, Ordering::Release);
        flight.heed(&stop);
        assert!(!flight.wants_claims());
        assert!(flight.drained());
        assert!(matches!(flight.halt, Some(Halt::Stopped)));
    }
}
