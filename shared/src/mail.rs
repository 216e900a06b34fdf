//! Sending email through SendGrid's v3 Mail Send API (or the local stand-in, which speaks the
//! same protocol): `POST /v3/mail/send` with a bearer API key, answered 202 with no body.

use std::time::Duration;

use serde_json::json;

use crate::config::SendGridSettings;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The provider refused the message as it stands (bad address, bad key): do not retry.
    #[error("the email provider refused the message: {status} {body}")]
    Refused { status: u16, body: String },
    /// The provider is down or slow, or asked us to slow down: worth retrying.
    #[error("the email provider is unavailable")]
    Unavailable(#[source] Option<reqwest::Error>),
}

/// One plain-text message to one recipient.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
}

#[derive(Clone)]
pub struct MailClient {
    http: reqwest::Client,
    settings: SendGridSettings,
}

impl MailClient {
    pub fn new(settings: &SendGridSettings, http: reqwest::Client) -> Self {
        Self {
            http,
            settings: settings.clone(),
        }
    }

    pub async fn send(&self, mail: &Mail<'_>) -> Result<(), MailError> {
        let url = format!(
            "{}/v3/mail/send",
            self.settings.base_url.as_str().trim_end_matches('/')
        );
        let body = json!({
            "personalizations": [{"to": [{"email": mail.to}]}],
            "from": {"email": self.settings.from_address, "name": self.settings.from_name},
            "subject": mail.subject,
            "content": [{"type": "text/plain", "value": mail.text}],
        });
        let response = self
            .http
            .post(url)
            .bearer_auth(self.settings.api_key.expose())
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| MailError::Unavailable(Some(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(MailError::Unavailable(None));
        }
        let body = response.text().await.unwrap_or_default();
        Err(MailError::Refused {
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        })
    }
}
