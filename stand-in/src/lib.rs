//! A local stand-in for the external services BMS talks to, speaking their wire formats so the
//! whole product runs offline, in development and in tests. Never deploy it.
//!
//! - Google sign-in: a JWKS at `/google/oauth2/v3/certs`, and `/google/token`, which mints
//!   RS256 ID tokens (with a published or an unpublished key, any audience, issuer or expiry).
//! - Twilio: `/twilio/2010-04-01/Accounts/{sid}/Messages.json` accepts messages with the
//!   account's basic auth and records them; `/twilio/messages?to=` lists what was sent.
//! - SendGrid: `/sendgrid/v3/mail/send` takes mail with the API key as a bearer token;
//!   `/sendgrid/messages?to=` lists what was sent ([`sendgrid`]).
//! - Razorpay: orders, payments, captures, refunds and signed webhooks ([`razorpay`]).

mod razorpay;
mod sendgrid;

pub use razorpay::RazorpayConfig;
pub use sendgrid::SentMail;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const GOOGLE_KEY_ID: &str = "stand-in-google-1";
const ROGUE_KEY_ID: &str = "stand-in-rogue-1";

#[derive(Debug, Clone)]
pub struct Config {
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub sendgrid_api_key: String,
    /// Audience of minted Google tokens when the request names none.
    pub google_client_id: String,
    pub razorpay: RazorpayConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentMessage {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Clone)]
struct AppState {
    config: Arc<Config>,
    messages: Arc<Mutex<Vec<SentMessage>>>,
}

pub struct StandIn {
    listener: TcpListener,
    router: Router,
}

impl StandIn {
    pub async fn bind(address: SocketAddr, config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let razorpay = razorpay::routes(config.razorpay.clone());
        let sendgrid = sendgrid::routes(config.sendgrid_api_key.clone());
        let state = AppState {
            config: Arc::new(config),
            messages: Arc::default(),
        };
        let router = Router::new()
            .route("/google/oauth2/v3/certs", get(jwks))
            .route("/google/token", post(mint_google_token))
            .route(
                "/twilio/2010-04-01/Accounts/{sid}/Messages.json",
                post(send_message),
            )
            .route("/twilio/messages", get(list_messages))
            .with_state(state)
            .nest("/razorpay", razorpay)
            .merge(sendgrid);
        Ok(Self { listener, router })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub async fn run(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).await
    }
}

fn component(key: &str, name: &str) -> String {
    let all: Value = serde_json::from_str(match key {
        "google" => include_str!("../keys/google-signing.components.json"),
        _ => include_str!("../keys/rogue-signing.components.json"),
    })
    .unwrap_or_default();
    all[name].as_str().unwrap_or_default().to_owned()
}

async fn jwks() -> Response {
    let body = json!({
        "keys": [{
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": GOOGLE_KEY_ID,
            "n": component("google", "n"),
            "e": component("google", "e"),
        }]
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, must-revalidate"),
    );
    response
}

/// What to put in a minted Google ID token. Everything but `sub` and `email` has a default
/// that makes a valid token.
#[derive(Debug, Deserialize)]
struct MintRequest {
    sub: String,
    email: String,
    #[serde(default = "yes")]
    email_verified: bool,
    name: Option<String>,
    aud: Option<String>,
    #[serde(default = "google_issuer")]
    iss: String,
    /// Seconds from now; negative for an expired token.
    #[serde(default = "one_hour")]
    expires_in: i64,
    /// `google` (published in the JWKS) or `rogue` (not published).
    #[serde(default = "google_signer")]
    signer: String,
}

fn yes() -> bool {
    true
}
fn google_issuer() -> String {
    "https://accounts.google.com".into()
}
fn one_hour() -> i64 {
    3600
}
fn google_signer() -> String {
    "google".into()
}

async fn mint_google_token(
    State(state): State<AppState>,
    Json(request): Json<MintRequest>,
) -> Response {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": request.iss,
        "aud": request.aud.unwrap_or_else(|| state.config.google_client_id.clone()),
        "sub": request.sub,
        "email": request.email,
        "email_verified": request.email_verified,
        "name": request.name,
        "iat": now,
        "exp": now + request.expires_in,
    });
    let (pem, kid) = match request.signer.as_str() {
        "rogue" => (include_str!("../keys/rogue-signing.pem"), ROGUE_KEY_ID),
        _ => (include_str!("../keys/google-signing.pem"), GOOGLE_KEY_ID),
    };
    let mut header = Header::new(Algorithm::RS256);
    // A rogue token claims the published key id: only its signature gives it away.
    header.kid = Some(
        if kid == ROGUE_KEY_ID {
            GOOGLE_KEY_ID
        } else {
            kid
        }
        .to_owned(),
    );
    let token = EncodingKey::from_rsa_pem(pem.as_bytes())
        .and_then(|key| jsonwebtoken::encode(&header, &claims, &key));
    match token {
        Ok(id_token) => Json(json!({ "id_token": id_token })).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct MessageForm {
    #[serde(rename = "To")]
    to: String,
    #[serde(rename = "From")]
    from: String,
    #[serde(rename = "Body")]
    body: String,
}

async fn send_message(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<MessageForm>,
) -> Response {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            state.config.twilio_account_sid, state.config.twilio_auth_token
        ))
    );
    let authorised = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorised || sid != state.config.twilio_account_sid {
        let body = json!({"code": 20003, "message": "Authenticate", "status": 401});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if !form.to.starts_with('+') {
        let body = json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let message = SentMessage {
        sid: format!("SM{}", uuid::Uuid::new_v4().simple()),
        to: form.to,
        from: form.from,
        body: form.body,
        sent_at: Utc::now(),
    };
    if let Ok(mut messages) = state.messages.lock() {
        messages.push(message.clone());
    }
    let body = json!({
        "sid": message.sid, "status": "queued", "to": message.to, "from": message.from,
        "body": message.body, "account_sid": sid,
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct MessageFilter {
    to: Option<String>,
}

async fn list_messages(
    State(state): State<AppState>,
    Query(filter): Query<MessageFilter>,
) -> Json<Vec<SentMessage>> {
    let messages = state
        .messages
        .lock()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| filter.to.as_ref().is_none_or(|to| &m.to == to))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Json(messages)
}
