//! The signup endpoint: `GET /s/{sequence}` shows the form, `POST
//! /s/{sequence}` takes a signup (from that page, or from a form embedded
//! on an allowed site), `GET /c/{token}` asks to confirm and `POST
//! /c/{token}` confirms.
//!
//! Every accepted post gets the same page, whether the address is new,
//! pending, subscribed or suppressed; only a post that [`signup::decide`]
//! lets through records a request and wakes the confirmation sender
//! ([`super::confirmations`]), which mails it outside the request. A GET
//! never confirms (mail scanners follow links). A token that does not
//! open, has expired or points at nothing gets the plain 404 of an
//! unknown path. Bodies are bounded like the unsubscribe endpoint's; posts
//! are limited per client address ([`crate::signup::limits`]), per email
//! address (one confirmation until its link expires) and in total (the
//! pending cap).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::http::{not_found, page, read_body};
use super::{Shared, SignupForm, signup_pages};
use crate::signup::{self, Action, Submission, token};
use crate::store::signups::{Request, Signups as _};

/// The largest signup post read: a handful of short fields.
const MAX_SIGNUP_BODY: usize = 16 * 1024;

/// `GET /s/{sequence}`: the hosted form.
pub async fn form(
    State(shared): State<Arc<Shared>>,
    sequence: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(form) = signup_form(&shared, sequence) else {
        return not_found().await;
    };
    hosted(
        StatusCode::OK,
        signup_pages::hosted(&form.name, &form.settings, &form.zone, None),
    )
}

/// The hosted form. Unlike the token pages it lets the browser send its
/// origin with the post (`no-referrer` would make it `null`, which is
/// refused); the page holds nothing secret.
fn hosted(status: StatusCode, html: String) -> Response {
    let mut response = page(status, html);
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    response
}

/// `POST /s/{sequence}`: a signup.
pub async fn submit(
    State(shared): State<Arc<Shared>>,
    sequence: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(form) = signup_form(&shared, sequence) else {
        return not_found().await;
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("invalid"));
    let Some(form_name) = form_name(
        origin,
        shared.origin.as_deref(),
        &form.settings.allowed_origins,
    ) else {
        return page(StatusCode::FORBIDDEN, signup_pages::refused());
    };
    let now = Utc::now();
    let client = client_address(&shared.trusted_proxies, peer, &headers);
    let allowed = shared
        .clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allow(client, form.settings.per_client_per_hour, now);
    if !allowed {
        return page(StatusCode::TOO_MANY_REQUESTS, signup_pages::busy());
    }
    let body = match read_body(body, MAX_SIGNUP_BODY).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let submission = match signup::parse(&body, &form.settings) {
        Ok(submission) => submission,
        Err(invalid) => {
            let error = invalid.to_string();
            return hosted(
                StatusCode::BAD_REQUEST,
                signup_pages::hosted(&form.name, &form.settings, &form.zone, Some(&error)),
            );
        }
    };
    let signup = Signup {
        form: &form,
        submission,
        client,
        form_name,
        now,
    };
    match signup.record(&shared).await {
        Ok(true) => page(StatusCode::OK, signup_pages::check_inbox(&form.name)),
        Ok(false) => page(StatusCode::SERVICE_UNAVAILABLE, signup_pages::busy()),
        Err(err) => {
            tracing::error!("cannot record a signup for {}: {err:#}", form.id);
            page(StatusCode::SERVICE_UNAVAILABLE, signup_pages::failed())
        }
    }
}

/// A valid post, about to be recorded.
struct Signup<'a> {
    form: &'a SignupForm,
    submission: Submission,
    client: IpAddr,
    form_name: String,
    now: DateTime<Utc>,
}

impl Signup<'_> {
    /// Records the request if the rules let it through; false when the
    /// pending cap is reached (for everyone alike).
    async fn record(self, shared: &Shared) -> anyhow::Result<bool> {
        let Signup {
            form,
            submission,
            client,
            form_name,
            now,
        } = self;
        let sequence = &form.id;
        if submission.bot {
            tracing::info!("a signup for {sequence} filled in the honeypot; ignored");
            return Ok(true);
        }
        let store = &shared.store;
        if store.pending_count(sequence, now).await? >= u64::from(form.settings.max_pending) {
            tracing::warn!(
                "{sequence} has {} signups waiting for their confirmation ([signup.{sequence}] max_pending); new ones are refused until some confirm or expire",
                form.settings.max_pending
            );
            return Ok(false);
        }
        let address = submission.address.to_string();
        let email = crate::subscribers::key(&address);
        let (standing, suppression) = tokio::try_join!(
            store.standing(sequence, &email),
            store.suppression_reason(&email)
        )?;
        if signup::decide(standing, suppression.as_deref(), now) == Action::Nothing {
            return Ok(true);
        }
        let mut id = [0; 16];
        getrandom::fill(&mut id)?;
        let expires_at = now
            + chrono::Duration::from_std(form.settings.confirm_within)
                .unwrap_or(chrono::Duration::days(2));
        store
            .request(&Request {
                sequence: sequence.clone(),
                email,
                address,
                name: submission.name,
                timezone: submission.timezone.map(|zone| zone.0.name().to_owned()),
                fields: submission.fields,
                token_id: token::id_text(&id),
                at: now,
                ip: client.to_string(),
                form: form_name,
                expires_at,
            })
            .await?;
        shared.outgoing.notify_one();
        Ok(true)
    }
}

/// `GET /c/{token}`: the confirm button. Changes nothing.
pub async fn ask(
    State(shared): State<Arc<Shared>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let now = Utc::now();
    let Some(id) = opened(&shared, token, now) else {
        return not_found().await;
    };
    match shared.store.pointed(&id).await {
        Ok(Some(pointed)) if pointed.expires_at > now => {
            let name = shared.sequence_name(&pointed.sequence);
            let html = if pointed.confirmed_at.is_some() {
                signup_pages::confirmed(&name)
            } else {
                signup_pages::ask(&name)
            };
            page(StatusCode::OK, html)
        }
        Ok(_) => not_found().await,
        Err(err) => {
            tracing::error!("cannot read a signup: {err:#}");
            page(StatusCode::SERVICE_UNAVAILABLE, signup_pages::failed())
        }
    }
}

/// `POST /c/{token}`: confirms, records the consent and enrolls, durably,
/// then says so. Repeating it is harmless.
pub async fn confirm(
    State(shared): State<Arc<Shared>>,
    token: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = Utc::now();
    let Some(id) = opened(&shared, token, now) else {
        return not_found().await;
    };
    if let Err(refused) = read_body(body, MAX_SIGNUP_BODY).await {
        return refused;
    }
    let client = client_address(&shared.trusted_proxies, peer, &headers);
    let store = &shared.store;
    let confirmed = async {
        let newly = store.confirm(&id, now, &client.to_string()).await?;
        anyhow::Ok((newly, store.pointed(&id).await?))
    };
    match confirmed.await {
        Ok((newly, Some(pointed))) if pointed.confirmed_at.is_some() => {
            if newly {
                tracing::info!(
                    "{} confirmed a signup for {} (form: {})",
                    pointed.email,
                    pointed.sequence,
                    pointed.form
                );
            }
            page(
                StatusCode::OK,
                signup_pages::confirmed(&shared.sequence_name(&pointed.sequence)),
            )
        }
        Ok(_) => not_found().await,
        Err(err) => {
            tracing::error!("cannot record a confirmation: {err:#}");
            page(StatusCode::SERVICE_UNAVAILABLE, signup_pages::failed())
        }
    }
}

/// The signup form of the path's sequence, if it has one.
fn signup_form(
    shared: &Shared,
    sequence: Result<Path<String>, PathRejection>,
) -> Option<SignupForm> {
    let Path(sequence) = sequence.ok()?;
    shared
        .signups
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&sequence)
        .cloned()
}

/// The request id of a token that opens and has not expired.
fn opened(
    shared: &Shared,
    token: Result<Path<String>, PathRejection>,
    now: DateTime<Utc>,
) -> Option<String> {
    let Path(token) = token.ok()?;
    token::open(&shared.keys, &token, now)
}

/// Which form a post comes from, by its `Origin` header: `hosted` for the
/// service's own page, the origin for an allowed site, `direct` for a
/// client that sends none (not a browser); `None` for any other site.
fn form_name(origin: Option<&str>, own: Option<&str>, allowed: &[String]) -> Option<String> {
    let Some(origin) = origin else {
        return Some("direct".to_owned());
    };
    let origin = signup::origin(origin)?;
    if own == Some(origin.as_str()) {
        Some("hosted".to_owned())
    } else {
        allowed.contains(&origin).then_some(origin)
    }
}

/// The client's address: the peer's, or, when the peer is a trusted
/// proxy, the last address in `X-Forwarded-For` that is not one.
fn client_address(trusted: &[IpAddr], peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.ip();
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .rev()
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_accepted_from_the_own_page_and_allowed_sites_only() {
        let own = Some("https://news.example.com");
        let allowed = vec!["https://www.example.com".to_owned()];
        assert_eq!(form_name(None, own, &allowed).as_deref(), Some("direct"));
        assert_eq!(
            form_name(Some("https://news.example.com"), own, &allowed).as_deref(),
            Some("hosted")
        );
        assert_eq!(
            form_name(Some("https://WWW.example.com"), own, &allowed).as_deref(),
            Some("https://www.example.com")
        );
        assert_eq!(form_name(Some("https://evil.example"), own, &allowed), None);
        assert_eq!(form_name(Some("null"), own, &allowed), None);
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        let from_proxy = SocketAddr::new(proxy, 4000);
        let client = client_address(&[proxy], from_proxy, &headers);
        assert_eq!(client, "203.0.113.9".parse::<IpAddr>().unwrap());
        let direct = SocketAddr::new("198.51.100.7".parse().unwrap(), 4000);
        assert_eq!(client_address(&[proxy], direct, &headers), direct.ip());
        assert_eq!(client_address(&[], from_proxy, &headers), proxy);
    }
}
