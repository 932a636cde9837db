//! DKIM signing (RFC 6376, relaxed/relaxed) of the final message bytes,
//! with RSA-SHA256 or Ed25519-SHA256 (RFC 8463) keys.
//!
//! The signature is computed over exactly the bytes the transport sends
//! and prepended to them, so nothing can change the message after it was
//! signed. [`Signing`] wraps any transport; [`Signer::dns_record`] gives
//! the TXT record the operator publishes. It reads the key file once and
//! touches nothing else.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use sha2::{Digest as _, Sha256};

use super::{DeliveryError, Parcel, Transport};
use crate::config::Dkim;
use crate::diagnostic::{InvalidInput, Problem};

/// The headers the signature covers, when present (DESIGN.md section 8).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

enum Key {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// Signs messages for one domain and selector.
pub struct Signer {
    domain: String,
    selector: String,
    key: Key,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads the private key `[dkim]` names (`key_file`, already resolved
    /// against the project): RSA as PKCS#1 or PKCS#8 PEM, Ed25519 as
    /// PKCS#8 PEM.
    pub fn load(config: &Dkim, key_file: &Path) -> Result<Signer, InvalidInput> {
        let problem = |message: String| InvalidInput::from(Problem::error(key_file, message));
        let pem = std::fs::read_to_string(key_file)
            .map_err(|err| problem(format!("cannot read the DKIM key ([dkim] private_key_file): {err}; create one with `openssl genrsa -out dkim.pem 2048`")))?;
        let key = if let Ok(key) = rsa::RsaPrivateKey::from_pkcs1_pem(&pem) {
            rsa_key(key).map_err(problem)?
        } else if let Ok(key) =
            <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem)
        {
            rsa_key(key).map_err(problem)?
        } else if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem) {
            Key::Ed25519(Box::new(key))
        } else {
            return Err(problem(
                "not an RSA (PKCS#1 or PKCS#8 PEM) or Ed25519 (PKCS#8 PEM) private key; create one with `openssl genrsa -out dkim.pem 2048` or `openssl genpkey -algorithm ed25519 -out dkim.pem`".to_owned(),
            ));
        };
        Ok(Signer {
            domain: config.domain.clone(),
            selector: config.selector.clone(),
            key,
        })
    }

    fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The DNS record to publish: its name and its TXT value.
    pub fn dns_record(&self) -> (String, String) {
        let (kind, public) = match &self.key {
            Key::Rsa(key) => (
                "rsa",
                rsa::RsaPublicKey::from(key.as_ref().as_ref())
                    .to_public_key_der()
                    .map(|der| BASE64.encode(der.as_bytes()))
                    .unwrap_or_default(),
            ),
            Key::Ed25519(key) => ("ed25519", BASE64.encode(key.verifying_key().as_bytes())),
        };
        (
            format!("{}._domainkey.{}", self.selector, self.domain),
            format!("v=DKIM1; k={kind}; p={public}"),
        )
    }

    /// `message` with a `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let (head, body) = split(message);
        let fields = header_fields(head);
        let body_hash = BASE64.encode(Sha256::digest(relaxed_body(body)));

        // Each instance of a signed header, the last one first (RFC 6376 5.4.2).
        let mut signed: Vec<&[u8]> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for name in SIGNED_HEADERS {
            for field in fields.iter().rev().filter(|field| field.name_is(name)) {
                signed.push(field.raw);
                names.push(name);
            }
        }
        let unsigned = format!(
            "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\th={};\r\n\tbh={};\r\n\tb=",
            self.algorithm(),
            self.domain,
            self.selector,
            names.join(":"),
            body_hash
        );
        let mut data = Vec::new();
        for field in signed {
            data.extend_from_slice(&relaxed_header(field));
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(&relaxed_header(unsigned.as_bytes()));
        let signature = match &self.key {
            Key::Rsa(key) => key.sign(&data).to_vec(),
            Key::Ed25519(key) => key.sign(&Sha256::digest(&data)).to_bytes().to_vec(),
        };
        let mut out = Vec::with_capacity(unsigned.len() + 400 + message.len());
        out.extend_from_slice(unsigned.as_bytes());
        out.extend_from_slice(BASE64.encode(signature).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        out
    }
}

fn rsa_key(key: rsa::RsaPrivateKey) -> Result<Key, String> {
    use rsa::traits::PublicKeyParts as _;
    let bits = key.size() * 8;
    if bits < 1024 {
        return Err(format!(
            "the DKIM key has {bits} bits; receivers ignore keys under 1024: make a 2048-bit one with `openssl genrsa -out dkim.pem 2048`"
        ));
    }
    Ok(Key::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key))))
}

/// Headers and body, split at the first empty line.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|window| window == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// One header field, with its folded continuation lines, without the final CRLF.
struct Field<'a> {
    raw: &'a [u8],
}

impl Field<'_> {
    fn name_is(&self, name: &str) -> bool {
        let end = self.raw.iter().position(|&b| b == b':').unwrap_or(0);
        self.raw[..end]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    }
}

fn header_fields(head: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < head.len() {
        let end = head[at..]
            .windows(2)
            .position(|window| window == b"\r\n")
            .map_or(head.len(), |offset| at + offset);
        let next = (end + 2).min(head.len());
        let continues = matches!(head.get(next), Some(b' ' | b'\t'));
        if !continues {
            fields.push(Field {
                raw: &head[start..end],
            });
            start = next;
        }
        at = next;
    }
    fields
}

/// Relaxed header canonicalization: lower-case name, unfolded value with
/// runs of whitespace as one space, none around the colon or at the end.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let mut out: Vec<u8> = field[..colon]
        .trim_ascii()
        .to_ascii_lowercase()
        .into_iter()
        .collect();
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let start = out.len();
    let mut space = false;
    for &byte in value {
        match byte {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && out.len() > start {
                    out.push(b' ');
                }
                space = false;
                out.push(byte);
            }
        }
    }
    out
}

/// Relaxed body canonicalization: whitespace runs as one space, none at
/// line ends, no empty lines at the end, CRLF after the last line.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut pending_blank = 0usize;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut canonical = Vec::with_capacity(line.len());
        let mut space = false;
        for &byte in line {
            if byte == b' ' || byte == b'\t' {
                space = true;
            } else {
                if space {
                    canonical.push(b' ');
                }
                space = false;
                canonical.push(byte);
            }
        }
        if canonical.is_empty() {
            pending_blank += 1;
        } else {
            for _ in 0..pending_blank {
                out.extend_from_slice(b"\r\n");
            }
            pending_blank = 0;
            out.extend_from_slice(&canonical);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// A transport that signs every message before handing it on, when a
/// signer is configured.
#[derive(Debug)]
pub struct Signing<T> {
    transport: T,
    signer: Option<Signer>,
}

impl<T> Signing<T> {
    /// Wraps `transport`; `None` sends messages as they are.
    pub fn new(transport: T, signer: Option<Signer>) -> Signing<T> {
        Signing { transport, signer }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.transport
    }
}

impl<T: Transport> Transport for Signing<T> {
    async fn send(&self, parcel: &Parcel) -> Result<String, DeliveryError> {
        match &self.signer {
            None => self.transport.send(parcel).await,
            Some(signer) => {
                let signed = Parcel {
                    bytes: signer.sign(&parcel.bytes),
                    ..parcel.clone()
                };
                self.transport.send(&signed).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_unfolds_and_squeezes_whitespace() {
        assert_eq!(
            relaxed_header(b"Subject :  Hello \r\n\t  world  "),
            b"subject:Hello world"
        );
        assert_eq!(relaxed_header(b"To: a@b"), b"to:a@b");
        assert_eq!(relaxed_header(b"Subject: Day 1: Hi"), b"subject:Day 1: Hi");
    }

    #[test]
    fn relaxed_body_drops_trailing_space_and_blank_lines() {
        assert_eq!(
            relaxed_body(b"a  b \r\n\r\nc\t\r\n\r\n\r\n"),
            b"a b\r\n\r\nc\r\n"
        );
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn header_fields_keep_folded_lines_together() {
        let head = b"From: a\r\nTo: b,\r\n c\r\nSubject: s\r\n";
        let raws: Vec<&[u8]> = header_fields(head).iter().map(|f| f.raw).collect();
        assert_eq!(raws, [&b"From: a"[..], b"To: b,\r\n c", b"Subject: s"]);
    }
}
