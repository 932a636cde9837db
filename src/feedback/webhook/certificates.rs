//! SNS signing certificates: which URLs may be fetched (HTTPS on
//! `sns.<region>.amazonaws.com` only), a cache of the certificates fetched
//! (in memory, and in `certificate_cache` on disk when set, so a restart
//! fetches nothing and a test can seed it), and the RSA key inside one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use der::asn1::AnyRef;
use der::{Decode as _, Encode as _, Reader as _, SliceReader, Tagged as _};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The most a certificate (or a confirmation reply) may weigh.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS URL on an SNS host, split: `sns.<region>.amazonaws.com[.cn]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsUrl {
    pub host: String,
    /// The path and query, from the `/` on.
    pub path: String,
}

impl SnsUrl {
    /// `url` when it is `https://sns.<region>.amazonaws.com[.cn]/…`, with no
    /// port, credentials or other host.
    pub fn parse(url: &str) -> Option<SnsUrl> {
        let rest = url.strip_prefix("https://")?;
        let slash = rest.find('/')?;
        let (host, path) = rest.split_at(slash);
        let region = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?
            .strip_prefix("sns.")?;
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        (!region.is_empty() && region.chars().all(plain) && !path.contains(['\\', ' ', '@'])).then(
            || SnsUrl {
                host: host.to_owned(),
                path: path.to_owned(),
            },
        )
    }

    /// Whether it names a signing certificate:
    /// `/SimpleNotificationService-<hex>.pem`.
    pub fn is_certificate(&self) -> bool {
        self.certificate_file().is_some()
    }

    fn certificate_file(&self) -> Option<&str> {
        let file = self.path.strip_prefix('/')?;
        let id = file
            .strip_prefix("SimpleNotificationService-")?
            .strip_suffix(".pem")?;
        (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then_some(file)
    }
}

/// Certificates by URL.
#[derive(Debug, Default)]
pub struct Certificates {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, RsaPublicKey>>,
}

impl Certificates {
    /// A cache kept in `dir` too, when given.
    pub fn new(dir: Option<PathBuf>) -> Certificates {
        Certificates {
            dir,
            memory: Mutex::default(),
        }
    }

    /// The public key of the certificate at `url` (a checked certificate URL).
    pub async fn key(&self, url: &SnsUrl) -> anyhow::Result<RsaPublicKey> {
        let name = format!("{}{}", url.host, url.path);
        if let Some(key) = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&name)
        {
            return Ok(key.clone());
        }
        let file = url.certificate_file().context("not a certificate URL")?;
        let cached = self.dir.as_ref().map(|dir| dir.join(&url.host).join(file));
        let pem = match cached.as_ref().and_then(|path| std::fs::read(path).ok()) {
            Some(pem) => pem,
            None => {
                let pem = get(url).await?;
                if let Some(path) = &cached {
                    store(path, &pem)?;
                }
                pem
            }
        };
        let key = public_key(&String::from_utf8_lossy(&pem))
            .context("the certificate holds no RSA public key")?;
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, key.clone());
        Ok(key)
    }
}

fn store(path: &std::path::Path, pem: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))
}

/// The RSA public key of a PEM certificate.
pub fn public_key(pem: &str) -> Option<RsaPublicKey> {
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
    //   signature, issuer, validity, subject, subjectPublicKeyInfo, … }
    let certificate = AnyRef::from_der(&der).ok()?;
    let mut outer = SliceReader::new(certificate.value()).ok()?;
    let tbs: AnyRef = outer.decode().ok()?;
    let mut fields = SliceReader::new(tbs.value()).ok()?;
    let first: AnyRef = fields.decode().ok()?;
    let skip = if first.tag().is_context_specific() {
        5
    } else {
        4
    };
    for _ in 0..skip {
        let _: AnyRef = fields.decode().ok()?;
    }
    let spki: AnyRef = fields.decode().ok()?;
    RsaPublicKey::from_public_key_der(&spki.to_der().ok()?).ok()
}

/// Fetches `url` over HTTPS (HTTP/1.0, so the body ends with the
/// connection) and returns the body of a 200 reply.
pub async fn get(url: &SnsUrl) -> anyhow::Result<Vec<u8>> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch(url))
        .await
        .with_context(|| format!("https://{}{} did not answer in time", url.host, url.path))?
}

async fn fetch(url: &SnsUrl) -> anyhow::Result<Vec<u8>> {
    let address = format!("https://{}{}", url.host, url.path);
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), 443))
        .await
        .with_context(|| format!("cannot connect to {}", url.host))?;
    let connector = tokio_native_tls::TlsConnector::from(native_tls::TlsConnector::new()?);
    let mut tls = connector
        .connect(&url.host, tcp)
        .await
        .with_context(|| format!("TLS with {} failed", url.host))?;
    tls.write_all(
        format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: dripline\r\n\r\n",
            url.path, url.host
        )
        .as_bytes(),
    )
    .await?;
    let mut response = Vec::new();
    tls.take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut response)
        .await?;
    anyhow::ensure!(
        response.len() <= MAX_RESPONSE,
        "{address} answered with too much"
    );
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{address} did not answer in HTTP"))?;
    let status = String::from_utf8_lossy(&response[..split]);
    let status = status.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.split_whitespace().nth(1) == Some("200"),
        "{address} answered `{status}`"
    );
    Ok(response[split + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_over_https_pass() {
        let good = SnsUrl::parse(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        )
        .unwrap();
        assert_eq!(good.host, "sns.us-east-1.amazonaws.com");
        assert!(good.is_certificate());
        assert!(
            SnsUrl::parse(
                "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem"
            )
            .unwrap()
            .is_certificate()
        );
        for bad in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
            "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://s3.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns..amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.US-EAST-1.amazonaws.com/x",
        ] {
            assert_eq!(SnsUrl::parse(bad), None, "{bad}");
        }
        let not_a_certificate =
            SnsUrl::parse("https://sns.eu-west-1.amazonaws.com/../../etc/passwd").unwrap();
        assert!(!not_a_certificate.is_certificate());
        assert!(
            !SnsUrl::parse("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a/b.pem")
                .unwrap()
                .is_certificate()
        );
    }
}
