//! Unsubscribe tokens: who wants off which sequence, signed so that nobody
//! can forge one for somebody else.
//!
//! A token is `base64url(sequence "\n" address) "." base64url(mac)`, where
//! the MAC is HMAC-SHA256 of the first half's bytes under the project's
//! secret key and the address is lowercased. The server recovers address
//! and sequence from the token itself, so no database row is needed per
//! link, and tokens never expire. This module is pure apart from
//! [`Key::from_file`]: it touches no clock or network.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::diagnostic::Problem;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// How to make a key, for every error about a missing or bad one.
const HOW_TO_MAKE_ONE: &str = "run `dripline init`, or `openssl rand -hex 32 > .dripline-secret && chmod 600 .dripline-secret`";

/// A 32-byte HMAC key. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(bytes)
    }

    /// Reads a secret file: 64 hex characters on one line. Errors name the
    /// file and say how to make a key, but never repeat its contents.
    pub fn from_file(path: &Path) -> Result<Key, Problem> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            let what = if err.kind() == std::io::ErrorKind::NotFound {
                "the unsubscribe secret file does not exist".to_owned()
            } else {
                format!("cannot read the unsubscribe secret file ({})", err.kind())
            };
            Problem::error(path, format!("{what}; {HOW_TO_MAKE_ONE}"))
        })?;
        Key::parse(&text).map_err(|reason| {
            Problem::error(path, format!("{reason}; make a new key: {HOW_TO_MAKE_ONE}"))
        })
    }

    /// A new random key, kept nowhere: for previews before a project has
    /// its own secret.
    pub fn random() -> std::io::Result<Key> {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Key(bytes))
    }

    /// Makes a new random key and writes it to `path` (which must not
    /// exist yet) as 64 hex characters, readable by the owner only.
    pub fn create(path: &Path) -> std::io::Result<Key> {
        use std::io::Write as _;
        let Key(bytes) = Key::random()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        writeln!(file, "{}", hex::encode(bytes))?;
        file.sync_all()?;
        Ok(Key(bytes))
    }

    /// Parses the text of a secret file. Errors never quote the text.
    fn parse(text: &str) -> Result<Key, String> {
        let hex = text.strip_suffix('\n').unwrap_or(text);
        let hex = hex.strip_suffix('\r').unwrap_or(hex).trim();
        if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!(
                "the unsubscribe secret must be 64 hex characters (32 random bytes) on one line, but this file holds {} characters{}",
                hex.chars().count(),
                if hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    ""
                } else {
                    ", not all of them hex digits"
                }
            ));
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex, &mut bytes)
            .map_err(|_| "the unsubscribe secret is not hex".to_owned())?;
        Ok(Key(bytes))
    }

    /// An HMAC-SHA256 under this key, fed `payload` so far: for the
    /// tokens of other modules ([`crate::signup::token`]).
    pub(crate) fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length, so a 32-byte key never fails.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|err| unreachable!("HMAC accepts any key length: {err}"));
        mac.update(payload);
        mac
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// The token for `address` on `sequence`, signed with `key`.
pub fn sign(key: &Key, address: &str, sequence: &str) -> String {
    let payload = payload(address, sequence);
    let tag = key.mac(payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The address (lowercased) and sequence a token was signed for, when
/// one of `keys` signed it; `None` for anything forged, altered or garbled.
/// Several keys let an old key keep working while a new one takes over.
pub fn verify(keys: &[Key], token: &str) -> Option<(String, String)> {
    let (payload, tag) = token.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    // `verify_slice` compares in constant time.
    keys.iter()
        .find(|key| key.mac(&payload).verify_slice(&tag).is_ok())?;
    let payload = String::from_utf8(payload).ok()?;
    let (sequence, address) = payload.split_once('\n')?;
    Some((address.to_owned(), sequence.to_owned()))
}

/// What the MAC covers. Neither part can hold a newline (sequence ids
/// are validated, addresses are parsed), so the split is unambiguous.
fn payload(address: &str, sequence: &str) -> String {
    format!("{sequence}\n{}", crate::subscribers::key(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    #[test]
    fn a_created_key_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".dripline-secret");
        let key = Key::create(&path).unwrap();
        assert_eq!(Key::from_file(&path).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Key::create(&path).is_err(), "never overwrites a key");
    }

    #[test]
    fn a_signed_token_verifies_to_its_address_and_sequence() {
        let token = sign(&key(1), "ada@example.com", "gut-immune");
        assert_eq!(
            verify(&[key(1)], &token),
            Some(("ada@example.com".to_owned(), "gut-immune".to_owned()))
        );
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
    }

    #[test]
    fn the_address_is_lowercased() {
        let token = sign(&key(1), "Ada@Example.COM", "gut-immune");
        assert_eq!(token, sign(&key(1), "ada@example.com", "gut-immune"));
        assert_eq!(verify(&[key(1)], &token).unwrap().0, "ada@example.com");
    }

    #[test]
    fn any_of_several_keys_verifies() {
        let token = sign(&key(2), "ada@example.com", "gut-immune");
        assert!(verify(&[key(1), key(2)], &token).is_some());
        assert!(verify(&[key(1)], &token).is_none());
        assert!(verify(&[], &token).is_none());
    }

    #[test]
    fn altered_tokens_are_rejected() {
        let token = sign(&key(1), "ada@example.com", "gut-immune");
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                verify(&[key(1)], &altered),
                None,
                "changed at {at}: {altered}"
            );
        }
        let (_, tag) = token.split_once('.').unwrap();
        let other_address = URL_SAFE_NO_PAD.encode("gut-immune\neve@example.com");
        let other_sequence = URL_SAFE_NO_PAD.encode("other\nada@example.com");
        for forged in [
            format!("{other_address}.{tag}"),
            format!("{other_sequence}.{tag}"),
            token[..token.len() - 1].to_owned(),
            token[..token.len() / 2].to_owned(),
            token.replace('.', ""),
            String::new(),
            "garbage".to_owned(),
            "..".to_owned(),
            "not base64!.also not".to_owned(),
        ] {
            assert_eq!(verify(&[key(1)], &forged), None, "{forged}");
        }
    }

    #[test]
    fn secret_files_hold_64_hex_characters() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(Key::parse(&hex).is_ok());
        assert!(Key::parse(&format!("{hex}\n")).is_ok());
        assert!(Key::parse(&format!("{hex}\r\n")).is_ok());
        assert!(Key::parse(&hex[..62]).is_err());
        assert!(Key::parse(&hex.replace('a', "g")).is_err());
        assert!(Key::parse("").is_err());
    }

    #[test]
    fn errors_say_how_to_make_a_key_and_never_show_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Key::from_file(&dir.path().join("absent")).unwrap_err();
        assert!(missing.message.contains("dripline init"), "{missing}");
        let path = dir.path().join(".dripline-secret");
        let secret = "s3cr3t-s3cr3t-s3cr3t-zzzz";
        std::fs::write(&path, secret).unwrap();
        let short = Key::from_file(&path).unwrap_err().to_string();
        assert!(short.contains("openssl rand -hex 32"), "{short}");
        assert!(!short.contains(secret), "{short}");
        assert_eq!(format!("{:?}", key(7)), "Key(<secret>)");
    }
}
