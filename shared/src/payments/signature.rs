//! Razorpay's signatures: HMAC-SHA256 in lowercase hex, compared in constant time.
//!
//! - Checkout: over `order_id|payment_id` with the key secret. The order id is the one we
//!   stored for the booking, never the one the client sends back.
//! - Webhooks: over the raw request body, as received, with the webhook secret (or the previous
//!   one, for events signed before a rotation and retried after it).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

fn matches(secret: &str, message: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(message);
    let computed = mac.finalize().into_bytes();
    computed.as_slice().ct_eq(&expected).into()
}

/// Whether `signature` is what Razorpay Checkout returns for this order and payment.
pub fn checkout_signature_valid(
    key_secret: &str,
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> bool {
    matches(
        key_secret,
        format!("{order_id}|{payment_id}").as_bytes(),
        signature,
    )
}

/// Whether `signature` (the `X-Razorpay-Signature` header) signs `body` with one of `secrets`.
pub fn webhook_signature_valid<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    body: &[u8],
    signature: &str,
) -> bool {
    secrets
        .into_iter()
        .any(|secret| matches(secret, body, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently of this code, with Python's hmac module:
    // hmac.new(secret, message, hashlib.sha256).hexdigest()
    const CHECKOUT: &str = "be7419cb063ac1ea6d3e89764f5c6c9a4a888cdebec7290637ab8f959ee17046";
    const WEBHOOK_BODY: &[u8] = br#"{"entity":"event","event":"payment.captured","payload":{}}"#;
    const WEBHOOK: &str = "db65045e9942e40ff0729e948797f432596f732ec9f861c9be50e8244bb555f4";

    #[test]
    fn checkout_signatures_match_independent_vectors() {
        let secret = "local-razorpay-key-secret";
        assert!(checkout_signature_valid(
            secret,
            "order_IluGWxBm9U8zJ8",
            "pay_IluGZ3Rk5nRZpk",
            CHECKOUT
        ));
        assert!(checkout_signature_valid(
            secret,
            "order_IluGWxBm9U8zJ8",
            "pay_IluGZ3Rk5nRZpk",
            &CHECKOUT.to_uppercase()
        ));
        assert!(!checkout_signature_valid(
            secret,
            "order_other",
            "pay_IluGZ3Rk5nRZpk",
            CHECKOUT
        ));
        assert!(!checkout_signature_valid(
            "another-secret",
            "order_IluGWxBm9U8zJ8",
            "pay_IluGZ3Rk5nRZpk",
            CHECKOUT
        ));
        assert!(!checkout_signature_valid(
            secret,
            "order_IluGWxBm9U8zJ8",
            "pay_IluGZ3Rk5nRZpk",
            "not hex"
        ));
        assert!(!checkout_signature_valid(
            secret,
            "order_IluGWxBm9U8zJ8",
            "pay_IluGZ3Rk5nRZpk",
            ""
        ));
    }

    #[test]
    fn webhook_signatures_cover_the_raw_body_with_current_or_previous_secret() {
        let current = "local-razorpay-webhook-secret";
        assert!(webhook_signature_valid([current], WEBHOOK_BODY, WEBHOOK));
        assert!(webhook_signature_valid(
            ["rotated-secret", current],
            WEBHOOK_BODY,
            WEBHOOK
        ));
        assert!(!webhook_signature_valid(
            ["rotated-secret"],
            WEBHOOK_BODY,
            WEBHOOK
        ));
        // The same JSON re-serialised with a space is another body.
        let respaced = br#"{"entity": "event","event":"payment.captured","payload":{}}"#;
        assert!(!webhook_signature_valid([current], respaced, WEBHOOK));
    }
}
