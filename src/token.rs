//! Tokens: which email a link, an unsubscribe request or a bounce is
//! about, signed so that nobody can forge one for somebody else.
//!
//! A token is 24 lowercase base32 characters (so it survives in the local
//! part of an address, `bounces+TOKEN@…`, even where case is folded): a
//! 10-byte [`DeliveryId`] and 5 bytes of HMAC-SHA256 over it, under the
//! project's secret key and a [`Purpose`]. The id is itself a keyed hash
//! of sequence, address and step, so the token says nothing about who it
//! is for: the store maps the id back to its delivery ([`crate::store`]).
//! A bounce token never works as an unsubscribe token, nor the reverse.
//!
//! Links sent before these tokens existed carry the address in readable
//! form (`base64url(sequence "\n" address) "." base64url(mac)`); they keep
//! working through [`verify_legacy`]. Tokens never expire. This module is
//! pure apart from [`Key::from_file`]: it touches no clock or network.

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

/// What a token may be used for. The MAC covers it, so a token made for
/// one purpose is rejected for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The https link and the `mailto:` address of `List-Unsubscribe`.
    Unsubscribe,
    /// The VERP envelope sender, `bounces+TOKEN@…`.
    Bounce,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"dripline unsubscribe\n",
            Purpose::Bounce => b"dripline bounce\n",
        }
    }
}

/// Bytes of a [`DeliveryId`].
const ID_BYTES: usize = 10;

/// Bytes of the MAC a token carries after its id.
const TAG_BYTES: usize = 5;

/// The characters of a token: `(ID_BYTES + TAG_BYTES) * 8 / 5`.
pub const TOKEN_LEN: usize = 24;

/// The opaque id of one email (sequence, address, step) under one key. It
/// reveals nothing without the key, and the same email always gets the
/// same id, so a resend carries the same tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId([u8; ID_BYTES]);

impl DeliveryId {
    /// The id of `step` of `sequence` to `address` (any letter case).
    pub fn of(key: &Key, sequence: &str, address: &str, step: &str) -> DeliveryId {
        let mut mac = key.mac(b"dripline delivery\n");
        mac.update(payload(address, sequence).as_bytes());
        mac.update(b"\n");
        mac.update(step.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut id = [0; ID_BYTES];
        id.copy_from_slice(&digest[..ID_BYTES]);
        DeliveryId(id)
    }

    /// The id as the store keeps it: 16 lowercase base32 characters.
    pub fn text(&self) -> String {
        base32(&self.0)
    }

    fn tag(&self, key: &Key, purpose: Purpose) -> [u8; TAG_BYTES] {
        let mut mac = key.mac(purpose.label());
        mac.update(&self.0);
        let digest = mac.finalize().into_bytes();
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&digest[..TAG_BYTES]);
        tag
    }
}

/// The token for `id` and `purpose`, signed with `key`.
pub fn seal(key: &Key, id: DeliveryId, purpose: Purpose) -> String {
    let mut bytes = [0; ID_BYTES + TAG_BYTES];
    bytes[..ID_BYTES].copy_from_slice(&id.0);
    bytes[ID_BYTES..].copy_from_slice(&id.tag(key, purpose));
    base32(&bytes)
}

/// The id a token was sealed for, when one of `keys` sealed it for
/// `purpose`; `None` for anything forged, altered, garbled or made for the
/// other purpose. Letter case does not matter.
pub fn open(keys: &[Key], token: &str, purpose: Purpose) -> Option<DeliveryId> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let bytes = unbase32(token)?;
    let (id, tag) = bytes.split_at(ID_BYTES);
    let id = DeliveryId(id.try_into().ok()?);
    // `verify_truncated_left` compares in constant time.
    keys.iter().find(|key| {
        let mut mac = key.mac(purpose.label());
        mac.update(&id.0);
        mac.verify_truncated_left(tag).is_ok()
    })?;
    Some(id)
}

/// `address` with `+token` added to its local part: `bounces@x` becomes
/// `bounces+TOKEN@x` (a mail server with `recipient_delimiter = +`
/// delivers it to `bounces@x`).
pub fn tagged(address: &lettre::Address, token: &str) -> lettre::Address {
    lettre::Address::new(format!("{}+{token}", address.user()), address.domain())
        .unwrap_or_else(|err| unreachable!("a base32 tag keeps a local part valid: {err}"))
}

/// The RFC 4648 base32 alphabet, in lower case.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Lowercase base32 without padding, for byte counts that are multiples of 5.
fn base32(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 8 / 5);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |bits, &b| bits << 8 | u64::from(b));
        for index in 0..chunk.len() * 8 / 5 {
            let digit = (bits >> (35 - 5 * index)) & 31;
            text.push(char::from(BASE32[digit as usize]));
        }
    }
    text
}

/// Decodes [`base32`] text (any letter case) whose length is a multiple of 8.
fn unbase32(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(8) {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
    for chunk in text.as_bytes().chunks(8) {
        let mut bits = 0u64;
        for &c in chunk {
            let digit = BASE32.iter().position(|&d| d == c.to_ascii_lowercase())?;
            bits = bits << 5 | digit as u64;
        }
        bytes.extend_from_slice(&bits.to_be_bytes()[3..]);
    }
    Some(bytes)
}

/// A token in the format of links sent before [`seal`]: it shows the
/// address and sequence. Only tests (and old emails) still make these.
pub fn sign_legacy(key: &Key, address: &str, sequence: &str) -> String {
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
pub fn verify_legacy(keys: &[Key], token: &str) -> Option<(String, String)> {
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
    fn a_legacy_token_verifies_to_its_address_and_sequence() {
        let token = sign_legacy(&key(1), "ada@example.com", "gut-immune");
        assert_eq!(
            verify_legacy(&[key(1)], &token),
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
        let token = sign_legacy(&key(1), "Ada@Example.COM", "gut-immune");
        assert_eq!(token, sign_legacy(&key(1), "ada@example.com", "gut-immune"));
        assert_eq!(
            verify_legacy(&[key(1)], &token).unwrap().0,
            "ada@example.com"
        );
    }

    #[test]
    fn any_of_several_keys_verifies() {
        let token = sign_legacy(&key(2), "ada@example.com", "gut-immune");
        assert!(verify_legacy(&[key(1), key(2)], &token).is_some());
        assert!(verify_legacy(&[key(1)], &token).is_none());
        assert!(verify_legacy(&[], &token).is_none());
    }

    #[test]
    fn altered_tokens_are_rejected() {
        let token = sign_legacy(&key(1), "ada@example.com", "gut-immune");
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                verify_legacy(&[key(1)], &altered),
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
            assert_eq!(verify_legacy(&[key(1)], &forged), None, "{forged}");
        }
    }

    #[test]
    fn a_sealed_token_opens_to_its_id_for_its_purpose_only() {
        let id = DeliveryId::of(&key(1), "gut-immune", "Ada@Example.com", "welcome");
        assert_eq!(
            id,
            DeliveryId::of(&key(1), "gut-immune", "ada@example.com", "welcome")
        );
        for other in [
            DeliveryId::of(&key(1), "gut-immune", "ada@example.com", "day-2"),
            DeliveryId::of(&key(1), "other", "ada@example.com", "welcome"),
            DeliveryId::of(&key(2), "gut-immune", "ada@example.com", "welcome"),
        ] {
            assert_ne!(id, other);
        }
        let token = seal(&key(1), id, Purpose::Unsubscribe);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(token.bytes().all(|b| BASE32.contains(&b)), "{token}");
        assert!(!token.contains("ada"), "{token}");
        assert_eq!(open(&[key(1)], &token, Purpose::Unsubscribe), Some(id));
        assert_eq!(
            open(
                &[key(2), key(1)],
                &token.to_uppercase(),
                Purpose::Unsubscribe
            ),
            Some(id),
            "case-folded on the way back, or signed with the previous key"
        );
        assert_eq!(open(&[key(1)], &token, Purpose::Bounce), None);
        assert_eq!(open(&[key(2)], &token, Purpose::Unsubscribe), None);
        let bounce = seal(&key(1), id, Purpose::Bounce);
        assert_ne!(bounce, token);
        assert_eq!(open(&[key(1)], &bounce, Purpose::Bounce), Some(id));
        assert_eq!(id.text().len(), 16);
    }

    #[test]
    fn altered_sealed_tokens_are_rejected() {
        let token = seal(
            &key(1),
            DeliveryId::of(&key(1), "s", "ada@example.com", "a"),
            Purpose::Unsubscribe,
        );
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(open(&[key(1)], &altered, Purpose::Unsubscribe), None);
        }
        for garbled in [
            "",
            "a",
            &token[1..],
            &format!("{token}a"),
            "!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(open(&[key(1)], garbled, Purpose::Unsubscribe), None);
        }
    }

    #[test]
    fn base32_round_trips() {
        let bytes: Vec<u8> = (0..15).map(|b| b * 17).collect();
        assert_eq!(unbase32(&base32(&bytes)).unwrap(), bytes);
        assert_eq!(base32(b"\0\0\0\0\0"), "aaaaaaaa");
        assert_eq!(base32(&[0xff; 5]), "77777777");
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
