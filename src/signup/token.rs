//! Confirmation tokens: the link in a confirmation email.
//!
//! A token is `base64url(id expiry) "." base64url(tag)`: a random 16-byte
//! id (the store finds the request by it), the time the link stops working
//! (8 bytes, Unix seconds, big-endian), and the first 16 bytes of an
//! HMAC-SHA256 over both under the project's secret key and a label of its
//! own, so no unsubscribe token can pass for one. The tag is compared in
//! constant time. The token names no address. Pure: the caller gives the
//! time and the random bytes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::Mac as _;

use crate::token::Key;

/// What the MAC covers before the id, so these tokens differ from every other kind.
const LABEL: &[u8] = b"dripline signup confirmation\n";

const ID_BYTES: usize = 16;
const TAG_BYTES: usize = 16;

/// Tokens are 22 + 1 + 22 characters; anything longer is garbage.
pub const MAX_LEN: usize = 64;

/// The id a request is stored under: 32 lowercase hex characters.
pub fn id_text(id: &[u8; ID_BYTES]) -> String {
    hex::encode(id)
}

/// The token for request `id`, working until `expires_at`.
pub fn seal(key: &Key, id: &[u8; ID_BYTES], expires_at: DateTime<Utc>) -> String {
    let payload = payload(id, expires_at.timestamp());
    let tag = key.mac(LABEL).chain_update(payload).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
    )
}

/// The stored id of a token one of `keys` sealed and that still works at
/// `now`; `None` for anything forged, altered, garbled or expired.
pub fn open(keys: &[Key], token: &str, now: DateTime<Utc>) -> Option<String> {
    if token.len() > MAX_LEN {
        return None;
    }
    let (payload, tag) = token.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if payload.len() != ID_BYTES + 8 || tag.len() != TAG_BYTES {
        return None;
    }
    // `verify_truncated_left` compares in constant time.
    keys.iter().find(|key| {
        key.mac(LABEL)
            .chain_update(&payload)
            .verify_truncated_left(&tag)
            .is_ok()
    })?;
    let (id, expiry) = payload.split_at(ID_BYTES);
    let expires_at = i64::from_be_bytes(expiry.try_into().ok()?);
    if now.timestamp() >= expires_at {
        return None;
    }
    Some(hex::encode(id))
}

fn payload(id: &[u8; ID_BYTES], expires_at: i64) -> [u8; ID_BYTES + 8] {
    let mut bytes = [0; ID_BYTES + 8];
    bytes[..ID_BYTES].copy_from_slice(id);
    bytes[ID_BYTES..].copy_from_slice(&expires_at.to_be_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn a_token_opens_to_its_id_until_it_expires() {
        let key = Key::from_bytes([3; 32]);
        let token = seal(&key, &[7; 16], at(1000));
        assert_eq!(
            open(std::slice::from_ref(&key), &token, at(999)),
            Some("07".repeat(16))
        );
        assert_eq!(open(std::slice::from_ref(&key), &token, at(1000)), None);
        assert_eq!(open(&[Key::from_bytes([4; 32])], &token, at(10)), None);
        assert!(token.len() <= MAX_LEN, "{token}");
    }

    #[test]
    fn altered_or_unsubscribe_tokens_are_refused() {
        let key = Key::from_bytes([3; 32]);
        let token = seal(&key, &[7; 16], at(1000));
        for position in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                open(std::slice::from_ref(&key), &altered, at(10)),
                None,
                "{altered}"
            );
        }
        // A later expiry with the old tag does not verify.
        let (_, tag) = token.split_once('.').unwrap();
        let later = URL_SAFE_NO_PAD.encode(payload(&[7; 16], 9_999_999));
        assert_eq!(
            open(
                std::slice::from_ref(&key),
                &format!("{later}.{tag}"),
                at(10)
            ),
            None
        );
        let id = crate::token::DeliveryId::of(&key, "gut", "ada@example.com", "day-1");
        let unsubscribe = crate::token::seal(&key, id, crate::token::Purpose::Unsubscribe);
        assert_eq!(open(&[key], &unsubscribe, at(10)), None);
    }
}
