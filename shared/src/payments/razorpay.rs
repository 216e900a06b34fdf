//! A client of Razorpay's REST API (orders, payments, captures, refunds), authenticated with
//! the key id and secret. In development and tests it talks to the local stand-in, which speaks
//! the same wire format.

use std::time::Duration;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{config::RazorpaySettings, money::Paise};

#[derive(Debug, thiserror::Error)]
pub enum RazorpayError {
    /// Razorpay could not be reached, or did not answer in time: worth retrying.
    #[error("Razorpay is unavailable")]
    Unavailable(#[source] Option<reqwest::Error>),
    /// Razorpay answered, but not yet: worth retrying. 409 (a request with the same
    /// idempotency key is still being processed), 429, 5xx, and 401 (keys being rotated: the
    /// deployment with the new key is on its way).
    #[error("Razorpay cannot take the request now: {status} {description}")]
    NotNow { status: u16, description: String },
    /// Razorpay refused the request as it stands.
    #[error("Razorpay refused the request: {status} {description}")]
    Refused { status: u16, description: String },
}

/// Whether an answer of this status means "try again" rather than "no".
fn retryable(status: reqwest::StatusCode) -> bool {
    use reqwest::StatusCode;
    status.is_server_error()
        || matches!(
            status,
            StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS | StatusCode::UNAUTHORIZED
        )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub amount: Paise,
    pub currency: String,
    pub status: String,
}

/// A payment as Razorpay reports it. `status` is created, authorized, captured, refunded or
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub order_id: Option<String>,
    pub amount: Paise,
    pub currency: String,
    pub status: String,
    pub method: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// A refund as Razorpay reports it. `status` is pending, processed or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundEntity {
    pub id: String,
    pub payment_id: String,
    pub amount: Paise,
    pub status: String,
    /// Ours: the id of our refund request.
    #[serde(default)]
    pub receipt: Option<String>,
    #[serde(default)]
    pub notes: Value,
}

impl RefundEntity {
    /// Whether this is the refund made for our request `refund_id` (its receipt, or its notes).
    pub fn answers(&self, refund_id: &str) -> bool {
        self.receipt.as_deref() == Some(refund_id) || self.notes["refund_id"] == refund_id
    }
}

#[derive(Debug, Deserialize)]
struct Collection<T> {
    items: Vec<T>,
}

#[derive(Clone)]
pub struct Razorpay {
    http: reqwest::Client,
    settings: RazorpaySettings,
}

impl Razorpay {
    pub fn new(settings: &RazorpaySettings, http: reqwest::Client) -> Self {
        Self {
            http,
            settings: settings.clone(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.settings.key_id
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/v1/{path}",
            self.settings.base_url.as_str().trim_end_matches('/')
        )
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RazorpayError> {
        let response = request
            .basic_auth(
                &self.settings.key_id,
                Some(self.settings.key_secret.expose()),
            )
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| RazorpayError::Unavailable(Some(e)))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or_default();
            let description = body["error"]["description"]
                .as_str()
                .unwrap_or("no description")
                .chars()
                .take(300)
                .collect();
            let status_code = status.as_u16();
            return Err(if retryable(status) {
                RazorpayError::NotNow {
                    status: status_code,
                    description,
                }
            } else {
                RazorpayError::Refused {
                    status: status_code,
                    description,
                }
            });
        }
        response
            .json()
            .await
            .map_err(|e| RazorpayError::Unavailable(Some(e)))
    }

    /// `POST /v1/orders`: an order for `amount` paise that Checkout can pay.
    pub async fn create_order(
        &self,
        amount: Paise,
        currency: &str,
        receipt: &str,
        notes: Value,
    ) -> Result<Order, RazorpayError> {
        let body = json!({"amount": amount, "currency": currency, "receipt": receipt,
                          "notes": notes, "partial_payment": false});
        self.call(self.http.post(self.url("orders")).json(&body))
            .await
    }

    pub async fn fetch_payment(&self, payment_id: &str) -> Result<Payment, RazorpayError> {
        self.call(self.http.get(self.url(&format!("payments/{payment_id}"))))
            .await
    }

    /// Captures an authorized payment (uncaptured payments are refunded after 5 days).
    pub async fn capture(
        &self,
        payment_id: &str,
        amount: Paise,
        currency: &str,
    ) -> Result<Payment, RazorpayError> {
        let body = json!({"amount": amount, "currency": currency});
        self.call(
            self.http
                .post(self.url(&format!("payments/{payment_id}/capture")))
                .json(&body),
        )
        .await
    }

    /// The payments made against an order: what a missed webhook would have said.
    pub async fn order_payments(&self, order_id: &str) -> Result<Vec<Payment>, RazorpayError> {
        let collection: Collection<Payment> = self
            .call(
                self.http
                    .get(self.url(&format!("orders/{order_id}/payments"))),
            )
            .await?;
        Ok(collection.items)
    }

    /// Refunds `amount` paise of a captured payment. `idempotency_key` (our refund id) makes a
    /// repeated call return the same refund instead of a second one.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Paise,
        idempotency_key: &str,
        notes: Value,
    ) -> Result<RefundEntity, RazorpayError> {
        let body = json!({"amount": amount, "speed": "normal", "receipt": idempotency_key, "notes": notes});
        self.call(
            self.http
                .post(self.url(&format!("payments/{payment_id}/refund")))
                .header("X-Refund-Idempotency", idempotency_key)
                .json(&body),
        )
        .await
    }

    /// `GET /v1/refunds/{id}`: where a refund stands.
    pub async fn fetch_refund(
        &self,
        provider_refund_id: &str,
    ) -> Result<RefundEntity, RazorpayError> {
        self.call(
            self.http
                .get(self.url(&format!("refunds/{provider_refund_id}"))),
        )
        .await
    }

    /// `GET /v1/payments/{id}/refunds`: every refund of a payment, to find one whose answer we
    /// never received.
    pub async fn payment_refunds(
        &self,
        payment_id: &str,
    ) -> Result<Vec<RefundEntity>, RazorpayError> {
        let collection: Collection<RefundEntity> = self
            .call(
                self.http
                    .get(self.url(&format!("payments/{payment_id}/refunds"))),
            )
            .await?;
        Ok(collection.items)
    }
}
