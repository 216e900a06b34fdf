//! SendGrid's v3 Mail Send API, as far as BMS uses it: `POST /sendgrid/v3/mail/send` with the
//! configured API key as a bearer token takes a message (answered 202 with no body, as SendGrid
//! does) and keeps it; `GET /sendgrid/messages?to=` lists what was sent, for tests and for
//! reading codes locally. Errors come in SendGrid's shape: `{"errors": [{"message", "field",
//! "help"}]}`.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Query, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentMail {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

#[derive(Clone)]
struct SendGrid {
    api_key: Arc<str>,
    sent: Arc<Mutex<Vec<SentMail>>>,
}

pub(crate) fn routes(api_key: String) -> Router {
    let state = SendGrid {
        api_key: api_key.into(),
        sent: Arc::default(),
    };
    Router::new()
        .route("/sendgrid/v3/mail/send", post(send))
        .route("/sendgrid/messages", get(list))
        .with_state(state)
}

fn errors(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = json!({"errors": [{"message": message, "field": field, "help": null}]});
    (status, Json(body)).into_response()
}

async fn send(
    State(state): State<SendGrid>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let expected = format!("Bearer {}", state.api_key);
    let authorised = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorised {
        return errors(
            StatusCode::UNAUTHORIZED,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
        );
    }
    let Ok(Json(body)) = body else {
        return errors(StatusCode::BAD_REQUEST, "Bad Request", None);
    };
    let to = body["personalizations"][0]["to"][0]["email"].as_str();
    let from = body["from"]["email"].as_str();
    let subject = body["subject"].as_str();
    let text = body["content"]
        .as_array()
        .and_then(|parts| parts.iter().find(|part| part["type"] == "text/plain"))
        .and_then(|part| part["value"].as_str());
    let (Some(to), Some(from), Some(subject), Some(text)) = (to, from, subject, text) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "The personalizations, from, subject and content fields are required.",
            Some("personalizations"),
        );
    };
    if !to.contains('@') {
        return errors(
            StatusCode::BAD_REQUEST,
            "Does not contain a valid address.",
            Some("personalizations.0.to.0.email"),
        );
    }
    let mail = SentMail {
        to: to.to_owned(),
        from: from.to_owned(),
        subject: subject.to_owned(),
        text: text.to_owned(),
        sent_at: Utc::now(),
    };
    if let Ok(mut sent) = state.sent.lock() {
        sent.push(mail);
    }
    StatusCode::ACCEPTED.into_response()
}

#[derive(Debug, Deserialize)]
struct MailFilter {
    to: Option<String>,
}

async fn list(
    State(state): State<SendGrid>,
    Query(filter): Query<MailFilter>,
) -> Json<Vec<SentMail>> {
    let sent = state
        .sent
        .lock()
        .map(|sent| {
            sent.iter()
                .filter(|mail| filter.to.as_ref().is_none_or(|to| &mail.to == to))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Json(sent)
}
