//! Sending text messages through Twilio's Messages API (or the local stand-in, which speaks
//! the same protocol).

use std::time::Duration;

use crate::config::TwilioSettings;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Twilio refused the message as it stands (bad number, bad credentials): do not retry.
    #[error("the SMS provider refused the message: {status} {body}")]
    Refused { status: u16, body: String },
    /// The provider is down or slow, or asked us to slow down: worth retrying.
    #[error("the SMS provider is unavailable")]
    Unavailable(#[source] Option<reqwest::Error>),
}

#[derive(Clone)]
pub struct SmsClient {
    http: reqwest::Client,
    settings: TwilioSettings,
}

impl SmsClient {
    pub fn new(settings: &TwilioSettings, http: reqwest::Client) -> Self {
        Self {
            http,
            settings: settings.clone(),
        }
    }

    pub async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.base_url.as_str().trim_end_matches('/'),
            self.settings.account_sid
        );
        let response = self
            .http
            .post(url)
            .basic_auth(
                &self.settings.account_sid,
                Some(self.settings.auth_token.expose()),
            )
            .form(&[
                ("To", to),
                ("From", self.settings.from_number.as_str()),
                ("Body", body),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(Some(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(SmsError::Unavailable(None));
        }
        let body = response.text().await.unwrap_or_default();
        Err(SmsError::Refused {
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        })
    }
}
