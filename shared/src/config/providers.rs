//! The outside services: Razorpay, Google sign-in, Twilio and SendGrid (or the local stand-in
//! in development and tests).

use url::Url;

use super::{SettingsError, reader::Reader, values::Secret};

#[derive(Debug, Clone)]
pub struct RazorpaySettings {
    pub base_url: Url,
    pub key_id: String,
    pub key_secret: Secret,
    pub webhook_secret: Secret,
    /// Still accepted for webhook signatures for a while after a secret rotation.
    pub previous_webhook_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: String,
    pub jwks_url: Url,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub base_url: Url,
    pub account_sid: String,
    pub auth_token: Secret,
    pub from_number: String,
}

/// SendGrid's Mail Send API, which delivers account email (the local stand-in by default).
#[derive(Debug, Clone)]
pub struct SendGridSettings {
    pub base_url: Url,
    pub api_key: Secret,
    pub from_address: String,
    pub from_name: String,
}

impl RazorpaySettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let razorpay = RazorpaySettings {
            base_url: env.required("RAZORPAY_BASE_URL")?,
            key_id: env.required("RAZORPAY_KEY_ID")?,
            key_secret: env.required("RAZORPAY_KEY_SECRET")?,
            webhook_secret: env.required("RAZORPAY_WEBHOOK_SECRET")?,
            previous_webhook_secret: env.optional("RAZORPAY_PREVIOUS_WEBHOOK_SECRET")?,
        };
        Ok(razorpay)
    }
}

impl GoogleSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let google = GoogleSettings {
            client_id: env.required("GOOGLE_CLIENT_ID")?,
            jwks_url: env.required("GOOGLE_JWKS_URL")?,
        };
        Ok(google)
    }
}

impl TwilioSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let twilio = TwilioSettings {
            base_url: env.required("TWILIO_BASE_URL")?,
            account_sid: env.required("TWILIO_ACCOUNT_SID")?,
            auth_token: env.required("TWILIO_AUTH_TOKEN")?,
            from_number: env.required("TWILIO_FROM_NUMBER")?,
        };
        Ok(twilio)
    }
}

impl SendGridSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let sendgrid = SendGridSettings {
            base_url: env.required("SENDGRID_BASE_URL")?,
            api_key: env.required("SENDGRID_API_KEY")?,
            from_address: env.required_with("EMAIL_FROM_ADDRESS", |address: String| {
                crate::accounts::Email::parse(&address)
                    .map(|_| address)
                    .map_err(|_| "is not an email address".to_owned())
            })?,
            from_name: env.or("EMAIL_FROM_NAME", "BMS".to_owned())?,
        };
        Ok(sendgrid)
    }
}
