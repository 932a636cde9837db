//! The unsubscribe endpoint (DESIGN.md 11): `GET /u/{token}` asks,
//! `POST /u/{token}` unsubscribes, `GET /healthz` reports,
//! `POST /webhooks/{provider}` takes the provider events `[webhooks]`
//! configures; and the routes of the signup endpoint ([`super::signup`]),
//! which shares its limits.
//!
//! A GET never changes anything, because mail scanners follow links. A
//! POST unsubscribes whatever its body (RFC 8058 one-click clients post
//! `List-Unsubscribe=One-Click`, urlencoded or multipart; the confirm
//! page's button posts an empty form), and the suppression is durable
//! before the 200. A token that does not verify gets exactly the response
//! of an unknown path, so nothing tells a forged token from a missing
//! page, and no page names an address except to the holder of its token.
//! Requests are bounded: headers by hyper's buffer, bodies by
//! [`MAX_BODY`], slow clients by timeouts, and connections in number.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::{SHUTDOWN_GRACE, Shared, pages, signup, stopping};
use crate::feedback::webhook::{self, Reply};
use crate::store::{Reason, Store};
use crate::token::{self, Purpose};

/// The largest request body read; a larger one gets 413 and changes nothing.
pub const MAX_BODY: usize = 64 * 1024;

/// hyper's read buffer, which bounds the request line and headers; a
/// request whose head does not fit gets 431.
const MAX_HEAD: usize = 16 * 1024;

/// Time allowed for the request head, and for the body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 512;

/// Tokens are a few hundred characters; anything much longer is garbage.
const MAX_TOKEN: usize = 2048;

/// The endpoint's routes. Unknown paths, other methods and bad tokens all
/// get the same plain 404.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/u/{token}", get(confirm).post(unsubscribe))
        .route("/healthz", get(healthz))
        .route("/s/{sequence}", get(signup::form).post(signup::submit))
        .route("/c/{token}", get(signup::ask).post(signup::confirm))
        .route("/webhooks/{provider}", post(webhook))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets
/// requests in progress finish for up to [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .max_buf_size(MAX_HEAD)
        .header_read_timeout(READ_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit?,
            () = stopping(&mut shutdown) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    tracing::warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopping(&mut shutdown) => break,
        };
        // The client address, for the signup limits and consent records.
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut router.clone(), request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                log_connection_error(peer, &err);
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections were still open at shutdown");
    }
    Ok(())
}

fn log_connection_error(peer: SocketAddr, err: &hyper::Error) {
    // Clients that hang up or time out are routine.
    tracing::debug!("connection from {peer}: {err}");
}

/// `GET /u/{token}`: the confirm page. Changes nothing.
async fn confirm(
    State(shared): State<Arc<Shared>>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let Some((address, sequence)) = verified(&shared, token).await else {
        return not_found().await;
    };
    page(
        StatusCode::OK,
        pages::confirm(&address, &shared.sequence_name(&sequence), &shared.sender),
    )
}

/// `POST /u/{token}`: unsubscribes the token's address from every
/// sequence, durably, then says so. Repeating it is harmless.
async fn unsubscribe(
    State(shared): State<Arc<Shared>>,
    token: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    let Some((address, sequence)) = verified(&shared, token).await else {
        return not_found().await;
    };
    // Read (and drop) the body within bounds, so the connection can be reused.
    if let Err(refused) = read_body(body, MAX_BODY).await {
        return refused;
    }
    match shared
        .store
        .suppress(&address, Reason::Unsubscribed, "link", Utc::now())
        .await
    {
        Ok(newly) => {
            if newly {
                tracing::info!("{address} unsubscribed through a link from {sequence}");
            }
            page(
                StatusCode::OK,
                pages::done(&shared.sequence_name(&sequence), &shared.sender),
            )
        }
        Err(err) => {
            tracing::error!("cannot record the unsubscribe of {address}: {err:#}");
            page(StatusCode::SERVICE_UNAVAILABLE, pages::failed())
        }
    }
}

/// The largest webhook body read (SNS messages are up to 256 KB).
const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// `POST /webhooks/{provider}`: a provider's bounce and complaint events,
/// verified before anything is recorded ([`webhook::handle`]).
async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match tokio::time::timeout(
        READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_WEBHOOK_BODY),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request is too large; nothing changed.\n",
            );
        }
        Err(_) => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "The request took too long; nothing changed.\n",
            );
        }
    };
    let reply = webhook::handle(
        &shared.webhooks,
        &provider,
        &headers,
        &body,
        &shared.store,
        &shared.keys,
        Utc::now(),
    )
    .await;
    match reply {
        Reply::Accepted(_) => plain(StatusCode::OK, "ok\n"),
        Reply::NotFound => not_found().await,
        Reply::Refused(_) => plain(
            StatusCode::FORBIDDEN,
            "The request does not verify; nothing changed.\n",
        ),
        Reply::Malformed(_) => plain(
            StatusCode::BAD_REQUEST,
            "The request is not understood; nothing changed.\n",
        ),
        Reply::Unavailable => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot record it now; try again later.\n",
        ),
    }
}

/// `GET /healthz`: 200 and a small JSON status.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let health = shared.health().clone();
    let status = if health.last_pass_ok == Some(false) {
        "pass failing"
    } else {
        "ok"
    };
    let report = HealthReport {
        status,
        last_pass: health.last_pass,
        last_pass_ok: health.last_pass_ok,
        next_pass: health.next_pass,
    };
    let body = serde_json::to_string(&report).unwrap_or_else(|_| "{}".to_owned());
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{body}\n"),
    )
        .into_response()
}

/// The body of `/healthz`, in this key order.
#[derive(serde::Serialize)]
struct HealthReport {
    /// `ok`, or `pass failing` when the last pass failed.
    status: &'static str,
    last_pass: Option<DateTime<Utc>>,
    last_pass_ok: Option<bool>,
    next_pass: Option<DateTime<Utc>>,
}

/// Reads a request body of at most `limit` bytes within [`READ_TIMEOUT`];
/// a larger or slower one gets its refusal, and changes nothing.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(READ_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request is too large; nothing changed.\n",
        )),
        Err(_) => Err(plain(
            StatusCode::REQUEST_TIMEOUT,
            "The request took too long; nothing changed.\n",
        )),
    }
}

/// The one response for unknown paths, other methods and bad tokens.
pub(super) async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "Not found\n")
}

/// The address and sequence of a token that one of the keys signed: an
/// opaque one the store knows, or one in the format of older links.
async fn verified(
    shared: &Shared,
    token: Result<Path<String>, PathRejection>,
) -> Option<(String, String)> {
    let Path(token) = token.ok()?;
    if token.len() > MAX_TOKEN {
        return None;
    }
    let Some(id) = token::open(&shared.keys, &token, Purpose::Unsubscribe) else {
        return token::verify_legacy(&shared.keys, &token);
    };
    match shared.store.addressed(&id.text()).await {
        Ok(found) => found.map(|email| (email.email, email.sequence)),
        Err(err) => {
            tracing::error!("cannot look up an unsubscribe token: {err:#}");
            None
        }
    }
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// An HTML page, with headers that keep the token out of referrers and
/// caches and allow no script.
pub(super) fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
