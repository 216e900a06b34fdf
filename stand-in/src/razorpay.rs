//! Razorpay, as far as BMS uses it, over its wire format: orders, payments, captures and
//! refunds under `/razorpay/v1` (basic auth with the key id and secret), and signed webhook
//! deliveries. Every error, unknown routes and malformed bodies included, comes in Razorpay's
//! shape (`{"error": {"code", "description", "source", "step", "reason", "metadata", "field"}}`),
//! so the official SDKs raise their own errors rather than choke on the body. Test controls under
//! `/razorpay/test` pay an order (answering with the fields Checkout returns, correctly signed),
//! change a payment's or refund's status, fire webhooks (repeated, in any order, with retries),
//! and tune how refunds and captures behave: hold refund calls in flight (a second call with the
//! same `X-Refund-Idempotency` then gets 409, as Razorpay answers while the first is processed),
//! lose their answers, or forget idempotency keys (as Razorpay does once they expire).
//!
//! Signatures are made here with HMAC-SHA256 on their own, not with BMS's code, so the two
//! check each other.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RazorpayConfig {
    pub key_id: String,
    pub key_secret: String,
    pub webhook_secret: String,
    /// Where webhooks are delivered, until a test sets another.
    pub webhook_url: Option<String>,
}

#[derive(Default)]
struct Books {
    orders: HashMap<String, Value>,
    payments: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    /// Refund ids by idempotency key.
    refund_keys: HashMap<String, String>,
    /// Idempotency keys of refund calls being processed right now.
    refunds_in_flight: HashSet<String>,
    /// Keys are not remembered (as once Razorpay's expire): a repeated call is a new refund.
    forget_refund_keys: bool,
    /// The next this many refund calls take effect, then answer 500 (the answer is lost).
    lose_refund_answers: u32,
    /// Calls refused with 409 because the same key was in flight.
    refund_conflicts: u64,
    webhook_url: Option<String>,
    /// What a new refund becomes: processed, pending or failed.
    refund_outcome: String,
    /// Deliver refund.processed before answering the refund call.
    refund_webhook_first: bool,
    /// Captures take effect but their answer never comes (a worker dies waiting for it).
    stall_captures: bool,
    captures: u64,
    refunds_created: u64,
}

#[derive(Clone)]
pub(crate) struct Razorpay {
    config: Arc<RazorpayConfig>,
    books: Arc<Mutex<Books>>,
    /// While true, refund calls wait in flight before taking effect.
    hold_refunds: watch::Sender<bool>,
    http: reqwest::Client,
}

type Shared = Razorpay;

pub(crate) fn routes(config: RazorpayConfig) -> Router {
    let books = Books {
        webhook_url: config.webhook_url.clone(),
        refund_outcome: "processed".into(),
        ..Books::default()
    };
    let state = Razorpay {
        config: Arc::new(config),
        books: Arc::new(Mutex::new(books)),
        hold_refunds: watch::channel(false).0,
        http: reqwest::Client::new(),
    };
    // Nested under /razorpay by the caller, so these fallbacks answer for that prefix only.
    Router::new()
        .route("/v1/orders", post(create_order))
        .route("/v1/orders/{id}", get(fetch_order))
        .route("/v1/orders/{id}/payments", get(order_payments))
        .route("/v1/payments/{id}", get(fetch_payment))
        .route("/v1/payments/{id}/capture", post(capture))
        .route("/v1/payments/{id}/refund", post(create_refund))
        .route("/v1/payments/{id}/refunds", get(payment_refunds))
        .route(
            "/v1/payments/{id}/refunds/{refund_id}",
            get(fetch_payment_refund),
        )
        .route("/v1/refunds/{id}", get(fetch_refund))
        .route("/test/pay", post(pay))
        .route("/test/payments/{id}/status", post(set_payment_status))
        .route("/test/refunds/{id}/status", post(set_refund_status))
        .route("/test/webhook", post(fire_webhook))
        .route("/test/config", post(configure))
        .route("/test/counts", get(counts))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "The requested URL was not found on the server.",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "The method is not allowed for the requested URL.",
            )
        })
        .with_state(state)
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// An error in Razorpay's shape. Razorpay says BAD_REQUEST_ERROR for what the caller got wrong
/// (authentication included) and SERVER_ERROR for its own failures.
fn error(status: StatusCode, description: &str) -> Response {
    let code = if status.is_server_error() {
        "SERVER_ERROR"
    } else {
        "BAD_REQUEST_ERROR"
    };
    let body = json!({"error": {
        "code": code, "description": description, "source": "NA", "step": "NA",
        "reason": "NA", "metadata": {}, "field": null,
    }});
    (status, Json(body)).into_response()
}

/// A refusal, answered in Razorpay's error shape.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// A JSON body, or Razorpay's answer to one it cannot read.
fn body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, Refused> {
    body.map(|Json(value)| value).map_err(|rejection| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!(
                "The request body is not valid JSON: {}",
                rejection.body_text()
            ),
        )
    })
}

const NOT_FOUND: &str = "The id provided does not exist";

fn not_found() -> Response {
    error(StatusCode::BAD_REQUEST, NOT_FOUND)
}

fn collection(items: Vec<Value>) -> Response {
    Json(json!({"entity": "collection", "count": items.len(), "items": items})).into_response()
}

fn authorized(state: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            state.config.key_id, state.config.key_secret
        ))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == expected)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..14])
}

macro_rules! books {
    ($state:expr) => {
        $state.books.lock().expect("the stand-in's books")
    };
}

async fn create_order(
    State(state): State<Shared>,
    headers: HeaderMap,
    request: Result<Json<Value>, JsonRejection>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let body = match body(request) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let Some(amount) = body["amount"].as_i64().filter(|amount| *amount >= 100) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The amount must be atleast INR 1.00",
        );
    };
    let order = json!({
        "id": new_id("order"), "entity": "order", "amount": amount, "amount_paid": 0,
        "amount_due": amount, "currency": body["currency"].as_str().unwrap_or("INR"),
        "receipt": body["receipt"], "status": "created", "attempts": 0,
        "notes": body["notes"], "created_at": Utc::now().timestamp(),
    });
    books!(state).orders.insert(
        order["id"].as_str().unwrap_or_default().to_owned(),
        order.clone(),
    );
    Json(order).into_response()
}

async fn fetch_order(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    match books!(state).orders.get(&id) {
        Some(order) => Json(order.clone()).into_response(),
        None => not_found(),
    }
}

async fn order_payments(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let books = books!(state);
    if !books.orders.contains_key(&id) {
        return not_found();
    }
    collection(
        books
            .payments
            .values()
            .filter(|p| p["order_id"] == id.as_str())
            .cloned()
            .collect(),
    )
}

async fn fetch_payment(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    match books!(state).payments.get(&id) {
        Some(payment) => Json(payment.clone()).into_response(),
        None => not_found(),
    }
}

async fn capture(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let body = match body(request) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let (captured, stall) = {
        let mut books = books!(state);
        let stall = books.stall_captures;
        let Some(payment) = books.payments.get_mut(&id) else {
            return not_found();
        };
        if payment["status"] != "authorized" {
            return error(
                StatusCode::BAD_REQUEST,
                "This payment has already been captured",
            );
        }
        if payment["amount"] != body["amount"] {
            return error(
                StatusCode::BAD_REQUEST,
                "Capture amount must be equal to the amount authorized",
            );
        }
        payment["status"] = json!("captured");
        payment["captured"] = json!(true);
        let captured = payment.clone();
        if let Some(order_id) = captured["order_id"].as_str()
            && let Some(order) = books.orders.get_mut(order_id)
        {
            order["status"] = json!("paid");
            order["amount_paid"] = captured["amount"].clone();
            order["amount_due"] = json!(0);
        }
        books.captures += 1;
        (captured, stall)
    };
    if stall {
        // The capture happened; its answer is lost, as when the caller dies waiting.
        std::future::pending::<()>().await;
    }
    Json(captured).into_response()
}

async fn create_refund(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Result<Json<Value>, JsonRejection>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let body = match body(request) {
        Ok(body) => body,
        Err(refused) => return refused.into_response(),
    };
    let key = headers
        .get("x-refund-idempotency")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    {
        let mut books = books!(state);
        if let Some(key) = &key {
            if books.refunds_in_flight.contains(key) {
                books.refund_conflicts += 1;
                return error(
                    StatusCode::CONFLICT,
                    "A request with the same idempotency key is being processed. Retry after some time.",
                );
            }
            let known = (!books.forget_refund_keys)
                .then(|| books.refund_keys.get(key).cloned())
                .flatten();
            if let Some(existing) = known {
                let refund = books.refunds.get(&existing).cloned().unwrap_or_default();
                return Json(refund).into_response();
            }
            books.refunds_in_flight.insert(key.clone());
        }
    }
    // Held in flight while a test wants two calls with one key to meet.
    let mut held = state.hold_refunds.subscribe();
    let _ = held.wait_for(|hold| !*hold).await;
    let made = make_refund(&state, &id, &body, key.as_deref());
    if let Some(key) = &key {
        books!(state).refunds_in_flight.remove(key);
    }
    let (refund, webhook_first, lose_answer) = match made {
        Ok(made) => made,
        Err(refused) => return refused.into_response(),
    };
    if webhook_first && refund["status"] == "processed" {
        // The webhook overtakes the answer to the call that asked for the refund.
        let event = event("refund.processed", &state, None, refund["id"].as_str());
        deliver(&state, &event, &new_id("evt"), 1, None).await;
    }
    if lose_answer {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server encountered an error. The incident has been reported to admins.",
        );
    }
    Json(refund).into_response()
}

/// Makes a refund of payment `id` as asked; returns it, whether its webhook overtakes the
/// answer, and whether the answer is to be lost.
fn make_refund(
    state: &Shared,
    id: &str,
    body: &Value,
    key: Option<&str>,
) -> Result<(Value, bool, bool), Refused> {
    let mut books = books!(state);
    let outcome = books.refund_outcome.clone();
    let webhook_first = books.refund_webhook_first;
    let Some(payment) = books.payments.get_mut(id) else {
        return Err(Refused(StatusCode::BAD_REQUEST, NOT_FOUND.into()));
    };
    if payment["status"] != "captured" && payment["status"] != "refunded" {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "Only captured payments can be refunded".into(),
        ));
    }
    let left =
        payment["amount"].as_i64().unwrap_or(0) - payment["amount_refunded"].as_i64().unwrap_or(0);
    let amount = body["amount"].as_i64().unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "The refund amount provided is greater than amount captured".into(),
        ));
    }
    if outcome != "failed" {
        payment["amount_refunded"] =
            json!(payment["amount_refunded"].as_i64().unwrap_or(0) + amount);
        if amount == left {
            payment["status"] = json!("refunded");
        }
    }
    let refund = json!({
        "id": new_id("rfnd"), "entity": "refund", "amount": amount, "currency": "INR",
        "payment_id": id, "notes": body["notes"], "receipt": body["receipt"],
        "status": outcome, "speed_requested": body["speed"], "created_at": Utc::now().timestamp(),
    });
    let refund_id = refund["id"].as_str().unwrap_or_default().to_owned();
    if let Some(key) = key {
        books.refund_keys.insert(key.to_owned(), refund_id.clone());
    }
    books.refunds.insert(refund_id, refund.clone());
    books.refunds_created += 1;
    let lose_answer = books.lose_refund_answers > 0;
    books.lose_refund_answers = books.lose_refund_answers.saturating_sub(1);
    Ok((refund, webhook_first, lose_answer))
}

async fn fetch_refund(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(refund_id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    match books!(state).refunds.get(&refund_id) {
        Some(refund) => Json(refund.clone()).into_response(),
        None => not_found(),
    }
}

async fn fetch_payment_refund(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((payment_id, refund_id)): Path<(String, String)>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    match books!(state).refunds.get(&refund_id) {
        Some(refund) if refund["payment_id"] == payment_id.as_str() => {
            Json(refund.clone()).into_response()
        }
        _ => not_found(),
    }
}

async fn payment_refunds(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
) -> Response {
    if !authorized(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let books = books!(state);
    if !books.payments.contains_key(&payment_id) {
        return not_found();
    }
    collection(
        books
            .refunds
            .values()
            .filter(|refund| refund["payment_id"] == payment_id.as_str())
            .cloned()
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
struct PayRequest {
    order_id: String,
    /// Defaults to the order's amount.
    amount: Option<i64>,
    /// authorized (default), captured or failed.
    status: Option<String>,
    method: Option<String>,
}

/// Pays an order as a buyer would through Checkout, and answers what Checkout hands back.
async fn pay(State(state): State<Shared>, Json(request): Json<PayRequest>) -> Response {
    let mut books = books!(state);
    let Some(order) = books.orders.get(&request.order_id).cloned() else {
        return error(StatusCode::NOT_FOUND, "no such order");
    };
    let status = request.status.unwrap_or_else(|| "authorized".into());
    let payment = json!({
        "id": new_id("pay"), "entity": "payment",
        "amount": request.amount.unwrap_or(order["amount"].as_i64().unwrap_or(0)),
        "currency": order["currency"], "status": status, "order_id": request.order_id,
        "method": request.method.unwrap_or_else(|| "upi".into()), "captured": status == "captured",
        "amount_refunded": 0,
        "error_description": if status == "failed" { json!("Payment was declined by the bank") } else { Value::Null },
        "created_at": Utc::now().timestamp(),
    });
    let payment_id = payment["id"].as_str().unwrap_or_default().to_owned();
    books.payments.insert(payment_id.clone(), payment);
    let signature = hmac_hex(
        &state.config.key_secret,
        format!("{}|{payment_id}", request.order_id).as_bytes(),
    );
    Json(json!({
        "razorpay_order_id": request.order_id,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": signature,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct StatusChange {
    status: String,
}

async fn set_payment_status(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(change): Json<StatusChange>,
) -> Response {
    let mut books = books!(state);
    match books.payments.get_mut(&id) {
        Some(payment) => {
            payment["status"] = json!(change.status);
            payment["captured"] = json!(change.status == "captured");
            Json(payment.clone()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no such payment"),
    }
}

/// Changes a refund's status, as Razorpay does when it processes (or fails) one later; a refund
/// processed after all is taken from its payment.
async fn set_refund_status(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(change): Json<StatusChange>,
) -> Response {
    let mut books = books!(state);
    let Some(refund) = books.refunds.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "no such refund");
    };
    let was_failed = refund["status"] == "failed";
    refund["status"] = json!(change.status);
    let refund = refund.clone();
    if was_failed
        && change.status == "processed"
        && let Some(payment) = refund["payment_id"]
            .as_str()
            .and_then(|payment_id| books.payments.get_mut(payment_id))
    {
        let refunded = payment["amount_refunded"].as_i64().unwrap_or(0)
            + refund["amount"].as_i64().unwrap_or(0);
        payment["amount_refunded"] = json!(refunded);
        if Some(refunded) == payment["amount"].as_i64() {
            payment["status"] = json!("refunded");
        }
    }
    Json(refund).into_response()
}

/// A webhook event about a payment or refund, with its current state.
fn event(kind: &str, state: &Shared, payment_id: Option<&str>, refund_id: Option<&str>) -> Value {
    let books = books!(state);
    let mut payload = serde_json::Map::new();
    let refund = refund_id.and_then(|id| books.refunds.get(id)).cloned();
    let payment_id = payment_id.or_else(|| refund.as_ref().and_then(|r| r["payment_id"].as_str()));
    if let Some(payment) = payment_id.and_then(|id| books.payments.get(id)) {
        payload.insert("payment".into(), json!({"entity": payment}));
        if kind == "order.paid"
            && let Some(order) = payment["order_id"]
                .as_str()
                .and_then(|id| books.orders.get(id))
        {
            payload.insert("order".into(), json!({"entity": order}));
        }
    }
    if let Some(refund) = refund {
        payload.insert("refund".into(), json!({"entity": refund}));
    }
    json!({
        "entity": "event", "account_id": "acc_standin", "event": kind,
        "contains": payload.keys().collect::<Vec<_>>(), "payload": payload,
        "created_at": Utc::now().timestamp(),
    })
}

/// Delivers one event `times` times with one event id, retrying each delivery that does not
/// get a 2xx (as Razorpay does, with a shorter backoff). Returns the final status of each.
async fn deliver(
    state: &Shared,
    event: &Value,
    event_id: &str,
    times: u32,
    secret: Option<&str>,
) -> Vec<u16> {
    let Some(url) = books!(state).webhook_url.clone() else {
        return Vec::new();
    };
    let body = serde_json::to_vec(event).unwrap_or_default();
    let signature = hmac_hex(secret.unwrap_or(&state.config.webhook_secret), &body);
    let mut statuses = Vec::new();
    for _ in 0..times {
        let mut last = 0;
        for attempt in 0..4_u32 {
            let sent = state
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-razorpay-signature", &signature)
                .header("x-razorpay-event-id", event_id)
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            last = sent.map(|response| response.status().as_u16()).unwrap_or(0);
            if (200..300).contains(&last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 * 2_u64.pow(attempt))).await;
        }
        statuses.push(last);
    }
    statuses
}

#[derive(Debug, Deserialize)]
struct FireRequest {
    /// payment.captured, payment.failed, order.paid, refund.processed, ...
    event: String,
    payment_id: Option<String>,
    refund_id: Option<String>,
    /// Deliveries of the same event (same event id); default 1.
    times: Option<u32>,
    /// Defaults to a new id.
    event_id: Option<String>,
    /// Sign with this secret instead of the configured one (a forgery, or a rotated secret).
    secret: Option<String>,
}

async fn fire_webhook(State(state): State<Shared>, Json(request): Json<FireRequest>) -> Response {
    let event = event(
        &request.event,
        &state,
        request.payment_id.as_deref(),
        request.refund_id.as_deref(),
    );
    let event_id = request.event_id.unwrap_or_else(|| new_id("evt"));
    let statuses = deliver(
        &state,
        &event,
        &event_id,
        request.times.unwrap_or(1),
        request.secret.as_deref(),
    )
    .await;
    Json(json!({"event_id": event_id, "statuses": statuses})).into_response()
}

#[derive(Debug, Deserialize)]
struct ConfigChange {
    webhook_url: Option<String>,
    refund_outcome: Option<String>,
    refund_webhook_first: Option<bool>,
    stall_captures: Option<bool>,
    hold_refunds: Option<bool>,
    forget_refund_keys: Option<bool>,
    lose_refund_answers: Option<u32>,
}

async fn configure(State(state): State<Shared>, Json(change): Json<ConfigChange>) -> StatusCode {
    if let Some(hold) = change.hold_refunds {
        state.hold_refunds.send_replace(hold);
    }
    let mut books = books!(state);
    if let Some(forget) = change.forget_refund_keys {
        books.forget_refund_keys = forget;
    }
    if let Some(lose) = change.lose_refund_answers {
        books.lose_refund_answers = lose;
    }
    if let Some(url) = change.webhook_url {
        books.webhook_url = Some(url);
    }
    if let Some(outcome) = change.refund_outcome {
        books.refund_outcome = outcome;
    }
    if let Some(first) = change.refund_webhook_first {
        books.refund_webhook_first = first;
    }
    if let Some(stall) = change.stall_captures {
        books.stall_captures = stall;
    }
    StatusCode::NO_CONTENT
}

/// How many captures and refunds took effect, for exactly-once checks, and how many refund
/// calls are in flight or were refused with 409.
async fn counts(State(state): State<Shared>) -> Json<Value> {
    let books = books!(state);
    Json(json!({
        "captures": books.captures, "refunds": books.refunds_created,
        "refunds_in_flight": books.refunds_in_flight.len(),
        "refund_conflicts": books.refund_conflicts,
    }))
}
