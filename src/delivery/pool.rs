//! The sessions of the SMTP transport: at most `concurrency` open at once,
//! and a line of messages waiting for one.
//!
//! A session that frees goes to the first message in line. One whose
//! message is about to go out can take a message from the line even
//! sooner: that message's MAIL FROM, RCPT TO and DATA then go in the same
//! write as the message before it (RFC 2920 lets message content begin a
//! group of commands), and their replies come back with its reply. Each
//! message then costs one round trip instead of two. Pure bookkeeping: the
//! SMTP is in [`super::smtp`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use lettre::Address;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio::sync::oneshot;

/// An open session and what the server announced in it.
pub(super) struct Session {
    pub connection: AsyncSmtpConnection,
    /// The SIZE extension: `None` without it, `Some(0)` without a limit.
    pub size: Option<u64>,
    /// The server announced PIPELINING.
    pub pipelining: bool,
}

/// What a message in line needs for its commands to be written by the
/// session before it.
pub(super) struct Envelope {
    pub from: Address,
    pub to: Address,
    /// The message's size in bytes, for SIZE.
    pub size: usize,
    /// Whether the message is 7-bit, or needs 8BITMIME.
    pub ascii: bool,
}

/// A message's turn at a session.
pub(super) enum Turn {
    /// A session with nothing under way; `Instant` it was last used.
    Free(Lease, Instant),
    /// A session that wrote this message's MAIL FROM, RCPT TO and DATA
    /// behind the message before it: their three replies come next.
    Chained(Lease),
    /// Room for one more session, which the message opens.
    Open(Lease),
}

/// A message in line, and where its turn goes.
pub(super) struct Waiting {
    pub envelope: Envelope,
    turn: oneshot::Sender<Turn>,
}

impl Waiting {
    /// Gives this message its turn. Should its send be gone, the turn is
    /// dropped, which frees its room.
    pub fn give(self, turn: Turn) -> bool {
        self.turn.send(turn).is_ok()
    }
}

/// A session's room in the pool, and the session once open. Dropped
/// without [`Lease::give_back`] (a session lost, or its send cancelled),
/// the session closes and its room goes to the line.
pub(super) struct Lease {
    pool: Arc<Pool>,
    pub session: Option<Session>,
    /// The session went back to the pool.
    given_back: bool,
}

impl Lease {
    /// The session done with its message: to the first message in line
    /// that still waits, else idle. Without one, the room is freed.
    pub fn give_back(mut self) {
        if let Some(session) = self.session.take() {
            self.pool.give_back(session);
            self.given_back = true;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.given_back {
            self.pool.lost();
        }
    }
}

/// The sessions and the line.
pub(super) struct Pool {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: Vec<(Session, Instant)>,
    /// Sessions open or being opened, idle ones included.
    open: usize,
    line: VecDeque<Waiting>,
}

impl Pool {
    /// A pool of at most `limit` sessions.
    pub fn new(limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(self: &Arc<Self>, session: Option<Session>) -> Lease {
        Lease {
            pool: Arc::clone(self),
            session,
            given_back: false,
        }
    }

    /// The turn of a message with `envelope`: an idle session, room to
    /// open one, or, when all are busy, the turn a session gives it later.
    pub async fn take(self: &Arc<Self>, envelope: Envelope) -> Turn {
        let waiting = {
            let mut state = self.state();
            if let Some((session, since)) = state.idle.pop() {
                return Turn::Free(self.lease(Some(session)), since);
            }
            if state.open < self.limit {
                state.open += 1;
                drop(state);
                return Turn::Open(self.lease(None));
            }
            let (turn, waiting) = oneshot::channel();
            state.line.push_back(Waiting { envelope, turn });
            waiting
        };
        match waiting.await {
            Ok(turn) => turn,
            // Never: the pool keeps the sender until it gives the turn.
            Err(_) => {
                self.state().open += 1;
                Turn::Open(self.lease(None))
            }
        }
    }

    /// Takes the first message in line whose envelope `fits`, for its
    /// commands to go out behind the message now being sent.
    pub fn chain(&self, fits: impl Fn(&Envelope) -> bool) -> Option<Waiting> {
        let mut state = self.state();
        let at = state
            .line
            .iter()
            .position(|waiting| fits(&waiting.envelope))?;
        state.line.remove(at)
    }

    fn give_back(self: &Arc<Self>, session: Session) {
        let mut state = self.state();
        match state.line.pop_front() {
            Some(waiting) => {
                drop(state);
                // Given, or dropped with the send that waited, which frees
                // the room for the next in line.
                waiting.give(Turn::Free(self.lease(Some(session)), Instant::now()));
            }
            None => state.idle.push((session, Instant::now())),
        }
    }

    /// A room freed: to the first message in line (which opens a
    /// session), else closed.
    fn lost(self: &Arc<Self>) {
        let mut state = self.state();
        match state.line.pop_front() {
            Some(waiting) => {
                drop(state);
                waiting.give(Turn::Open(self.lease(None)));
            }
            None => state.open -= 1,
        }
    }

    /// Keeps a session opened outside [`Pool::take`] (a probe), idle.
    pub fn add(self: &Arc<Self>, session: Session) {
        self.state().open += 1;
        self.give_back(session);
    }

    /// The idle sessions, taken out of the pool (to close them).
    pub fn drain(&self) -> Vec<Session> {
        let mut state = self.state();
        let idle: Vec<Session> = state.idle.drain(..).map(|(session, _)| session).collect();
        state.open -= idle.len();
        idle
    }
}
