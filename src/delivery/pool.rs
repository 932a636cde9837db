//! The sessions of the SMTP transport: at most `concurrency` open at once,
//! and a line of messages waiting for one.
//!
//! A session that frees goes to the first message in line. One whose
//! message is about to go out can take a message from the line even
//! sooner: that message's MAIL FROM, RCPT TO and DATA then go in the same
//! write as the message before it (RFC 2920 lets message content begin a
//! group of commands), and their replies come back with its reply. Each
//! message then costs one round trip instead of two. Pure bookkeeping,
//! whatever a session `S` and a message's envelope `E` are: the SMTP is in
//! [`super::smtp`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

/// A message's turn at a session `S`.
pub(super) enum Turn<S, E> {
    /// A session with nothing under way; `Instant` it was last used.
    Free(Lease<S, E>, Instant),
    /// A session that wrote this message's MAIL FROM, RCPT TO and DATA
    /// behind the message before it: their three replies come next.
    Chained(Lease<S, E>),
    /// Room for one more session, which the message opens.
    Open(Lease<S, E>),
}

/// A message in line, with what the session before it needs to know of
/// it (`E`, its envelope), and where its turn goes.
pub(super) struct Waiting<S, E> {
    pub envelope: E,
    turn: oneshot::Sender<Turn<S, E>>,
}

impl<S, E> Waiting<S, E> {
    /// Gives this message its turn. Should its send be gone, the turn is
    /// dropped, which frees its room.
    pub fn give(self, turn: Turn<S, E>) {
        let _ = self.turn.send(turn);
    }
}

/// A session's room in the pool, and the session once open. Dropped
/// without [`Lease::give_back`] (a session lost, or its send cancelled),
/// the session closes and its room goes to the line.
pub(super) struct Lease<S, E> {
    pool: Arc<Pool<S, E>>,
    pub session: Option<S>,
    /// The session went back to the pool.
    given_back: bool,
}

impl<S, E> Lease<S, E> {
    /// The session done with its message: to the first message in line
    /// that still waits, else idle. Without one, the room is freed.
    pub fn give_back(mut self) {
        if let Some(session) = self.session.take() {
            self.pool.give_back(session);
            self.given_back = true;
        }
    }
}

impl<S, E> Drop for Lease<S, E> {
    fn drop(&mut self) {
        if !self.given_back {
            self.pool.lost();
        }
    }
}

/// The sessions and the line.
pub(super) struct Pool<S, E> {
    limit: usize,
    state: Mutex<State<S, E>>,
}

struct State<S, E> {
    idle: Vec<(S, Instant)>,
    /// Sessions open or being opened, idle ones included.
    open: usize,
    line: VecDeque<Waiting<S, E>>,
}

impl<S, E> Pool<S, E> {
    /// A pool of at most `limit` sessions.
    pub fn new(limit: usize) -> Arc<Pool<S, E>> {
        Arc::new(Pool {
            limit: limit.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                line: VecDeque::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<S, E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(self: &Arc<Self>, session: Option<S>) -> Lease<S, E> {
        Lease {
            pool: Arc::clone(self),
            session,
            given_back: false,
        }
    }

    /// The turn of a message with `envelope`: an idle session, room to
    /// open one, or, when all are busy, the turn a session gives it later.
    pub async fn take(self: &Arc<Self>, envelope: E) -> Turn<S, E>
    where
        E: Clone,
    {
        loop {
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
                state.line.push_back(Waiting {
                    envelope: envelope.clone(),
                    turn,
                });
                waiting
            };
            if let Ok(turn) = waiting.await {
                return turn;
            }
            // The session that took this message from the line was dropped
            // before it gave the turn (its send cancelled): back in line.
        }
    }

    /// Takes the first message in line whose envelope `fits`, for its
    /// commands to go out behind the message now being sent.
    pub fn chain(&self, fits: impl Fn(&E) -> bool) -> Option<Waiting<S, E>> {
        let mut state = self.state();
        let at = state
            .line
            .iter()
            .position(|waiting| fits(&waiting.envelope))?;
        state.line.remove(at)
    }

    fn give_back(self: &Arc<Self>, session: S) {
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
    pub fn add(self: &Arc<Self>, session: S) {
        self.state().open += 1;
        self.give_back(session);
    }

    /// The idle sessions, taken out of the pool (to close them).
    pub fn drain(&self) -> Vec<S> {
        let mut state = self.state();
        let idle: Vec<S> = state.idle.drain(..).map(|(session, _)| session).collect();
        state.open -= idle.len();
        idle
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    /// Sessions are numbers here; an envelope says whether it fits.
    type Numbers = Pool<u32, bool>;

    fn opened(turn: Turn<u32, bool>, session: u32) -> Lease<u32, bool> {
        match turn {
            Turn::Open(mut lease) => {
                lease.session = Some(session);
                lease
            }
            _ => panic!("expected room to open a session"),
        }
    }

    /// The session of a free turn (its lease dropped, which frees the room).
    fn free(turn: Option<Turn<u32, bool>>) -> Option<u32> {
        match turn? {
            Turn::Free(mut lease, _) => lease.session.take(),
            Turn::Chained(_) | Turn::Open(_) => None,
        }
    }

    #[test]
    fn never_more_sessions_than_the_limit_and_each_freed_one_goes_to_the_line() {
        let pool = Numbers::new(2);
        let one = opened(pool.take(true).now_or_never().unwrap(), 1);
        let two = opened(pool.take(true).now_or_never().unwrap(), 2);
        let mut third = Box::pin(pool.take(true));
        assert!((&mut third).now_or_never().is_none(), "waits in line");
        one.give_back();
        assert_eq!(free(third.now_or_never()), Some(1));
        two.give_back();
        assert_eq!(free(pool.take(true).now_or_never()), Some(2));
    }

    #[test]
    fn a_session_lost_or_a_send_cancelled_gives_its_room_to_the_line() {
        let pool = Numbers::new(1);
        let lease = opened(pool.take(true).now_or_never().unwrap(), 1);
        let mut next = Box::pin(pool.take(true));
        assert!((&mut next).now_or_never().is_none());
        drop(lease);
        let lease = opened(next.now_or_never().unwrap(), 2);
        // A message that left the line keeps no room: the session given
        // back finds nobody, and the room is free again.
        let mut gone = Box::pin(pool.take(true));
        assert!((&mut gone).now_or_never().is_none());
        drop(gone);
        lease.give_back();
        let again = pool.take(true).now_or_never().unwrap();
        assert!(matches!(again, Turn::Open(_) | Turn::Free(..)));
        let mut over = Box::pin(pool.take(true));
        assert!((&mut over).now_or_never().is_none(), "still one session");
    }

    #[test]
    fn a_chained_message_is_the_first_in_line_that_fits() {
        let pool = Numbers::new(1);
        let lease = opened(pool.take(true).now_or_never().unwrap(), 7);
        let mut too_big = Box::pin(pool.take(false));
        let mut fits = Box::pin(pool.take(true));
        assert!((&mut too_big).now_or_never().is_none());
        assert!((&mut fits).now_or_never().is_none());
        // Taken from the line by a send that is then cancelled: back in line.
        drop(pool.chain(|fits| *fits).expect("one fits"));
        assert!((&mut fits).now_or_never().is_none());
        let next = pool.chain(|fits| *fits).expect("one fits");
        next.give(Turn::Chained(lease));
        let Some(Turn::Chained(chained)) = fits.now_or_never() else {
            panic!("the one that fits comes chained");
        };
        assert_eq!(chained.session, Some(7));
        assert!(pool.chain(|fits| *fits).is_none(), "the big one stays");
        assert!((&mut too_big).now_or_never().is_none());
        // Its session lost, its room goes to the one still in line.
        drop(chained);
        assert!(matches!(too_big.now_or_never(), Some(Turn::Open(_))));
    }
}
