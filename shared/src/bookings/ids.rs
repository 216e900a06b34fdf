//! Booking ids made by the API, with two properties the accept path relies on:
//!
//! - **The same for the same request.** A booking's id is derived from its buyer and
//!   `Idempotency-Key`, with a key only the servers hold. Whichever path accepts a request (Redis
//!   in the steady state, Postgres while Redis is down) and whichever instance, a retry names
//!   the same booking, so the paths can never make two bookings of one request.
//! - **Its owner can be recognised from the id alone.** Half the id is a tag over the other half
//!   and the buyer. A booking the API accepted may, for a moment, be known only to the queue
//!   (Redis lost its status copy before the worker wrote the row): the API still answers its
//!   owner that it is PENDING, and answers 404 to anyone else.
//!
//! The id is a UUID of version 8 (custom), so it never collides with the random (v4) or
//! time-ordered (v7) ids made elsewhere.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::Secret;

#[derive(Clone)]
pub struct BookingIds {
    key: Vec<u8>,
}

impl BookingIds {
    /// Keys derived from `secret` (the JWT signing secret), so no setting is added.
    pub fn new(secret: &Secret) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(b"bms booking ids");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; 8] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&digest[..8]);
        tag
    }

    /// The id of the booking `user_id` asks for with `idempotency_key`.
    pub fn mint(&self, user_id: Uuid, idempotency_key: &str) -> Uuid {
        let mut request = self.tag(&[b"request", user_id.as_bytes(), idempotency_key.as_bytes()]);
        // Version 8 in the high nibble of byte 6.
        request[6] = (request[6] & 0x0f) | 0x80;
        let owner = self.owner_tag(user_id, &request);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&request);
        bytes[8..].copy_from_slice(&owner);
        Uuid::from_bytes(bytes)
    }

    /// Whether `id` was minted for `user_id`.
    pub fn minted_for(&self, id: Uuid, user_id: Uuid) -> bool {
        let bytes = id.as_bytes();
        if bytes[6] >> 4 != 8 {
            return false;
        }
        let expected = self.owner_tag(user_id, &bytes[..8]);
        subtle::ConstantTimeEq::ct_eq(&bytes[8..], &expected[..]).into()
    }

    /// The second half: a tag over the first and the owner, with the RFC 9562 variant bits.
    fn owner_tag(&self, user_id: Uuid, request: &[u8]) -> [u8; 8] {
        let mut owner = self.tag(&[b"owner", user_id.as_bytes(), request]);
        owner[0] = (owner[0] & 0x3f) | 0x80;
        owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> BookingIds {
        BookingIds::new(
            &"a-secret-of-at-least-thirty-two-characters"
                .parse()
                .unwrap(),
        )
    }

    #[test]
    fn one_request_one_id_and_only_its_owner_is_recognised() {
        let ids = ids();
        let (asha, ravi) = (Uuid::new_v4(), Uuid::new_v4());
        let id = ids.mint(asha, "key-1");
        assert_eq!(id, ids.mint(asha, "key-1"));
        assert_ne!(id, ids.mint(asha, "key-2"));
        assert_ne!(id, ids.mint(ravi, "key-1"));
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert!(ids.minted_for(id, asha));
        assert!(!ids.minted_for(id, ravi));
        assert!(!ids.minted_for(Uuid::new_v4(), asha));
        assert!(!ids.minted_for(Uuid::now_v7(), asha));
    }

    #[test]
    fn another_secret_makes_other_ids() {
        let other = BookingIds::new(
            &"another-secret-of-at-least-thirty-two-chars"
                .parse()
                .unwrap(),
        );
        let user = Uuid::new_v4();
        assert_ne!(ids().mint(user, "k"), other.mint(user, "k"));
        assert!(!other.minted_for(ids().mint(user, "k"), user));
    }
}
