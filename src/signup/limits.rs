//! The per-client limit on signup posts: at most so many an hour from one
//! client address (an IPv6 client is its /64 network, which one machine
//! usually holds whole), counted in fixed one-hour windows. It lives in memory,
//! per instance (a restart forgets it); the per-address limit and the cap
//! on pending confirmations are in the state and hold across instances.
//! Pure: the caller gives the time.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

/// Clients remembered at most; past it, finished windows are dropped, and
/// while it stays full a client not yet seen is refused (memory stays
/// bounded under a flood of addresses).
const MAX_CLIENTS: usize = 100_000;

/// Posts per client address in the current window.
#[derive(Debug, Default)]
pub struct ClientLimit {
    windows: HashMap<IpAddr, (DateTime<Utc>, u32)>,
}

impl ClientLimit {
    /// Counts a post from `client` at `now`; false when it is over `per_hour`.
    pub fn allow(&mut self, client: IpAddr, per_hour: u32, now: DateTime<Utc>) -> bool {
        let window = Duration::hours(1);
        let client = network(client);
        if self.windows.len() >= MAX_CLIENTS && !self.windows.contains_key(&client) {
            self.windows.retain(|_, (start, _)| now - *start < window);
            if self.windows.len() >= MAX_CLIENTS {
                return false;
            }
        }
        let (start, count) = self.windows.entry(client).or_insert((now, 0));
        if now - *start >= window {
            *start = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
        *count <= per_hour
    }
}

/// The key of a client: its IPv4 address, or its IPv6 /64 network.
fn network(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_share_an_hour() {
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        let mut limit = ClientLimit::default();
        let (one, two) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(limit.allow(one, 2, at(0)));
        assert!(limit.allow(one, 2, at(10)));
        assert!(!limit.allow(one, 2, at(20)));
        assert!(limit.allow(two, 2, at(20)));
        assert!(limit.allow(one, 2, at(3600)), "a new hour");
        let (a, b) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::ffff:2".parse().unwrap(),
        );
        assert!(limit.allow(a, 1, at(0)));
        assert!(!limit.allow(b, 1, at(1)), "one IPv6 /64 is one client");
    }
}
