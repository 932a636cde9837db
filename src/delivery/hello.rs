//! The name dripline gives itself in EHLO: `[smtp] helo_name` when set,
//! else this machine's fully-qualified name, else the domain of the
//! sender's address.
//!
//! A bare host name (`vm`) is never sent: servers that apply Postfix's
//! `reject_non_fqdn_helo_hostname` refuse it (`504 5.5.2 <vm>: Helo
//! command rejected`) for every recipient. Pure apart from
//! [`machine_name`], which asks the operating system and reads
//! /etc/hosts (never DNS, which could stall every run).

use lettre::transport::smtp::extension::ClientId;

/// Top-level names that only mean something inside one network, so a
/// host name ending in one of them is not a public, fully-qualified name.
const PRIVATE_SUFFIXES: &[&str] = &[
    "localdomain",
    "localhost",
    "local",
    "lan",
    "home",
    "internal",
    "invalid",
];

/// The EHLO name: `configured`, else `host` when it is fully qualified,
/// else `sender_domain`.
pub fn client_id(configured: Option<&str>, host: Option<&str>, sender_domain: &str) -> ClientId {
    let name = configured
        .or(host.filter(|host| is_fully_qualified(host)))
        .unwrap_or(sender_domain);
    ClientId::Domain(name.to_owned())
}

/// Whether `name` looks like a public, fully-qualified host name: two or
/// more valid labels, not all digits at the end (an IP address), and not
/// a private suffix such as `.localdomain`.
pub fn is_fully_qualified(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    let valid_label = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let Some(last) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(valid_label)
        && !last.chars().all(|c| c.is_ascii_digit())
        && !PRIVATE_SUFFIXES.contains(&last.to_ascii_lowercase().as_str())
}

/// This machine's fully-qualified name, as `hostname -f` finds it without
/// DNS: its host name when that has a dot, else the canonical name
/// /etc/hosts gives it (`127.0.1.1 mail.example.com mail`, as Debian's
/// installer writes).
pub fn machine_name() -> Option<String> {
    let ClientId::Domain(host) = ClientId::default() else {
        return None;
    };
    if is_fully_qualified(&host) {
        return Some(host);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    canonical_name(&hosts, &host)
}

/// The first fully-qualified canonical name (the first name of a line)
/// that a hosts file gives `host`.
fn canonical_name(hosts: &str, host: &str) -> Option<String> {
    hosts
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut names = line.split_whitespace().skip(1);
            let canonical = names.next()?;
            std::iter::once(canonical)
                .chain(names)
                .any(|name| name.eq_ignore_ascii_case(host))
                .then_some(canonical)
        })
        .find(|name| is_fully_qualified(name))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(id: ClientId) -> String {
        id.to_string()
    }

    #[test]
    fn a_bare_host_name_gives_way_to_the_sender_domain() {
        assert_eq!(
            name(client_id(None, Some("vm"), "example.com")),
            "example.com"
        );
        assert_eq!(
            name(client_id(None, Some("vm.localdomain"), "example.com")),
            "example.com"
        );
        assert_eq!(name(client_id(None, None, "example.com")), "example.com");
    }

    #[test]
    fn a_fully_qualified_host_name_is_used_and_the_setting_wins() {
        assert_eq!(
            name(client_id(None, Some("mail.example.org"), "example.com")),
            "mail.example.org"
        );
        assert_eq!(
            name(client_id(
                Some("out.example.net"),
                Some("mail.example.org"),
                "example.com"
            )),
            "out.example.net"
        );
    }

    #[test]
    fn the_hosts_file_gives_the_canonical_name() {
        let hosts = "127.0.0.1 localhost\n127.0.0.1 vm\n# 10.0.0.9 old.example.org vm\n127.0.1.1 vm.example.org vm\n";
        assert_eq!(
            canonical_name(hosts, "vm").as_deref(),
            Some("vm.example.org")
        );
        assert_eq!(canonical_name("127.0.0.1 localhost vm\n", "vm"), None);
        assert_eq!(canonical_name(hosts, "other"), None);
    }

    #[test]
    fn what_counts_as_fully_qualified() {
        for good in ["mail.example.com", "a-b.example.co.uk", "mail.example.com."] {
            assert!(is_fully_qualified(good), "{good}");
        }
        for bad in [
            "vm",
            "",
            "localhost",
            "host.local",
            "box.LAN",
            "10.0.0.1",
            "-x.example.com",
            "a..b",
            "under_score.example.com",
        ] {
            assert!(!is_fully_qualified(bad), "{bad}");
        }
    }
}
