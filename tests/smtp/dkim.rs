//! DKIM: messages signed by dripline verify with another implementation
//! (mail-auth), given the DNS record `dripline check` prints, and stop
//! verifying once the body changes.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

use super::server::{Options, Server};
use super::{DAY_1, Setup, openssl, run};

/// The one DNS record the test publishes.
struct Records(HashMap<String, Txt>);

impl ResolverCache<String, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: String, _: Txt, _: Instant) {}
}

fn verifies(message: &[u8], name: &str, value: &str) -> bool {
    let key = DomainKey::parse(value.as_bytes()).expect("the published record parses");
    let records = Records(HashMap::from([(format!("{name}."), Txt::from(key))]));
    let authenticator = MessageAuthenticator::new_cloudflare().expect("a resolver (never asked)");
    let message = AuthenticatedMessage::parse(message).expect("a parsable message");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime
        .block_on(authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(&records)));
    !results.is_empty()
        && results
            .iter()
            .all(|result| result.result() == &DkimResult::Pass)
}

#[test]
fn signatures_verify_with_another_implementation_and_break_when_the_body_changes() {
    let keys: [(&str, &[&str]); 3] = [
        (
            "RSA, PKCS#1",
            &["genrsa", "-traditional", "-out", "dkim.pem", "2048"],
        ),
        (
            "RSA, PKCS#8",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "dkim.pem",
            ],
        ),
        (
            "Ed25519",
            &["genpkey", "-algorithm", "ed25519", "-out", "dkim.pem"],
        ),
    ];
    for (kind, generate) in keys {
        let server = Server::start(Options::accept_all());
        let mut setup = Setup::new(3);
        setup.extra = "\n[dkim]\ndomain = \"example.com\"\nselector = \"drip2026\"\nprivate_key_file = \"dkim.pem\"\n".to_owned();
        let project = setup.project(&server);
        openssl(&project, generate);

        let check = project.dripline(&["check"]);
        assert_eq!(check.code, 0, "{kind}: {check:?}");
        let record = check
            .stdout
            .lines()
            .find(|line| line.contains("._domainkey."))
            .expect("the DNS record");
        let (name, value) = record.trim().split_once(" TXT ").expect("name TXT value");
        assert_eq!(name, "drip2026._domainkey.example.com");
        let value = value.trim_matches('"');
        let algorithm = if kind == "Ed25519" {
            "k=ed25519"
        } else {
            "k=rsa"
        };
        assert!(
            value.starts_with(&format!("v=DKIM1; {algorithm}; p=")),
            "{value}"
        );

        let sent = run(&project, DAY_1);
        assert_eq!(sent.code, 0, "{kind}: {sent:?}");
        let accepted = server.accepted();
        assert_eq!(accepted.len(), 3);
        for message in &accepted {
            let text = String::from_utf8_lossy(&message.data);
            let header = text
                .split("\r\n\r\n")
                .next()
                .and_then(|head| head.split("DKIM-Signature:").nth(1))
                .expect("a DKIM-Signature header");
            for signed in [
                "From",
                "To",
                "Subject",
                "Date",
                "Message-ID",
                "List-Id",
                "List-Unsubscribe",
                "List-Unsubscribe-Post",
                "MIME-Version",
                "Content-Type",
            ] {
                assert!(
                    header.contains(&format!(":{signed}:"))
                        || header.contains(&format!("={signed}:"))
                        || header.contains(&format!(":{signed};")),
                    "{kind}: {signed} is not signed: {header}"
                );
            }
            assert!(
                verifies(&message.data, name, value),
                "{kind}: does not verify:\n{text}"
            );
            let tampered = text.replacen("Welcome.", "Welcome!", 1);
            assert_ne!(tampered, text);
            assert!(
                !verifies(tampered.as_bytes(), name, value),
                "{kind}: a changed body still verifies"
            );
        }
    }
}

#[test]
fn check_reports_a_key_that_is_not_a_key() {
    let server = Server::start(Options::accept_all());
    let mut setup = Setup::new(1);
    setup.extra =
        "\n[dkim]\ndomain = \"example.com\"\nselector = \"s\"\nprivate_key_file = \"dkim.pem\"\n"
            .to_owned();
    let project = setup.project(&server);
    project.write("dkim.pem", "not a key\n");
    let check = project.dripline(&["check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check.stderr.contains("dkim.pem") && check.stderr.contains("openssl genrsa"),
        "{}",
        check.stderr
    );
}
