//! The preflight of `transport = "smtp"`: what must not reach a real
//! subscriber (DESIGN.md 8). The starter values of `dripline init` (a
//! placeholder sender, the sample postal address) and an unsubscribe link
//! no subscriber can reach (a loopback or private `base_url`) are errors;
//! an `http://` base_url is a warning, since it costs the one-click
//! unsubscribe. `run` and `serve` refuse to start on the errors, `check`
//! reports them, and `send-test` sends anyway, saying so.
//!
//! Pure: it looks at the config only.

use std::net::IpAddr;
use std::path::Path;

use lettre::message::Mailbox;

use crate::config::{Config, Transport};
use crate::diagnostic::{Problem, Report};

/// The postal address `dripline init` writes.
pub const STARTER_POSTAL_ADDRESS: &str = "123 Main St, Springfield";

/// Domains reserved for examples and tests (RFC 2606, RFC 6761): mail
/// from them bounces and fails SPF and DMARC.
const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];
const RESERVED_TLDS: [&str; 4] = ["test", "invalid", "example", "localhost"];

/// Every preflight problem of `config` (read from `file`); none unless the
/// transport is SMTP.
pub fn check(config: &Config, file: &Path) -> Report {
    let mut report = Report::default();
    if config.delivery.transport != Transport::Smtp {
        return report;
    }
    let sender = &config.sender;
    for (key, mailbox) in [
        ("from", Some(&sender.from)),
        ("reply_to", sender.reply_to.as_ref()),
    ] {
        if let Some(mailbox) = mailbox.filter(|mailbox| is_placeholder(mailbox)) {
            report.push(Problem::error(
                file,
                format!(
                    "[sender] {key} `{}` is a placeholder address (example.com, .test and .invalid domains receive no mail and fail SPF and DMARC): put your own, e.g. {key} = \"Your Name <you@yourdomain.com>\"",
                    mailbox.email
                ),
            ));
        }
    }
    if sender.postal_address.as_deref().map(str::trim) == Some(STARTER_POSTAL_ADDRESS) {
        report.push(Problem::error(
            file,
            format!(
                "[sender] postal_address is the sample `{STARTER_POSTAL_ADDRESS}` of `dripline init`: put the postal address every footer must show (CAN-SPAM)"
            ),
        ));
    }
    if let Some(url) = &config.unsubscribe.base_url {
        if let Some(kind) = unreachable_host(url) {
            report.push(Problem::error(
                file,
                format!(
                    "[unsubscribe] base_url `{url}` is on a {kind} address, which no subscriber can reach: their unsubscribe links would not work; set the public https URL where `dripline serve` answers (behind a TLS proxy, see docs/operations.md), e.g. base_url = \"https://news.yourdomain.com/dripline\""
                ),
            ));
        }
        if url.starts_with("http://") {
            report.push(Problem::warning(
                file,
                format!(
                    "[unsubscribe] base_url `{url}` is http: the emails carry no one-click unsubscribe (List-Unsubscribe-Post needs https), which Gmail and Yahoo require of bulk senders; serve it over https"
                ),
            ));
        }
    }
    report
}

/// Whether an address is at a reserved example or test domain.
fn is_placeholder(mailbox: &Mailbox) -> bool {
    let domain = mailbox.email.domain().trim_end_matches('.').to_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or_default();
    EXAMPLE_DOMAINS
        .iter()
        .any(|example| domain == *example || domain.ends_with(&format!(".{example}")))
        || RESERVED_TLDS.contains(&tld)
}

/// "loopback" or "private" when the URL's host is one subscribers cannot
/// reach.
fn unreachable_host(url: &str) -> Option<&'static str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    }
    .to_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("loopback");
    }
    if host.ends_with(".local") || host.ends_with(".internal") || host.ends_with(".lan") {
        return Some("private");
    }
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(ip) if ip.is_loopback() => Some("loopback"),
        IpAddr::V4(ip) if ip.is_private() || ip.is_link_local() || ip.is_unspecified() => {
            Some("private")
        }
        IpAddr::V6(ip) if ip.is_loopback() => Some("loopback"),
        IpAddr::V6(ip)
            if ip.is_unspecified()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80 =>
        {
            Some("private")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_no_subscriber_can_reach() {
        for (url, kind) in [
            ("http://127.0.0.1:8025", Some("loopback")),
            ("https://localhost/dripline", Some("loopback")),
            ("https://[::1]:8025", Some("loopback")),
            ("https://10.0.0.5/u", Some("private")),
            ("https://192.168.1.20", Some("private")),
            ("https://172.16.0.1", Some("private")),
            ("https://[fd00::1]/", Some("private")),
            ("https://nas.local/dripline", Some("private")),
            ("https://news.example.com/dripline", None),
            ("https://203.0.113.7/dripline", None),
        ] {
            assert_eq!(unreachable_host(url), kind, "{url}");
        }
    }

    #[test]
    fn placeholder_senders() {
        for (address, placeholder) in [
            ("you@example.com", true),
            ("hello@news.example.org", true),
            ("a@b.test", true),
            ("a@b.invalid", true),
            ("coach@terrain-wellness.net", false),
            ("coach@myexample.com", false),
        ] {
            let mailbox: Mailbox = address.parse().unwrap();
            assert_eq!(is_placeholder(&mailbox), placeholder, "{address}");
        }
    }
}
