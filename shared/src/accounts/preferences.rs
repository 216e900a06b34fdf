//! A user's own preferences: the city the catalogue opens on, the language messages come in,
//! and which messages they want. Read with defaults for a user who never chose; replaced as a
//! whole, so a client sends what it shows.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::validation::{FieldError, object, required_text, schema};

/// Which messages the user wants; the notification jobs honour these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Booking confirmations, refunds and reminders by email.
    pub email: bool,
    /// The same by SMS, to the verified phone.
    pub sms: bool,
    /// News of shows and offers (off unless the user says yes).
    pub offers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// The city discovery opens on; `null` for none.
    #[schema(schema_with = schema::required_text_or_null::<100>)]
    pub default_city: Option<String>,
    /// A language tag: `en`, `hi`, `en-IN`.
    #[schema(pattern = r"^[a-z]{2,3}(-[A-Z]{2})?$")]
    pub language: String,
    #[serde(deserialize_with = "object")]
    pub notifications: Notifications,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            default_city: None,
            language: "en".into(),
            notifications: Notifications {
                email: true,
                sms: true,
                offers: false,
            },
        }
    }
}

impl Preferences {
    /// Checks what a client sent: the city trimmed and 1 to 100 characters, the language a tag.
    pub fn parse(mut self) -> Result<Self, FieldError> {
        self.default_city = self
            .default_city
            .as_deref()
            .map(|city| required_text("default_city", city, 100))
            .transpose()?;
        if !is_language_tag(&self.language) {
            return Err(FieldError::new(
                "language",
                "a language tag such as en, hi or en-IN",
            ));
        }
        Ok(self)
    }
}

fn is_language_tag(tag: &str) -> bool {
    let (language, region) = tag.split_once('-').unwrap_or((tag, ""));
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty()
            || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())))
        && !(tag.contains('-') && region.is_empty())
}

/// The user's preferences, or the defaults if they never chose.
pub async fn read(db: &PgPool, user_id: Uuid) -> Result<Preferences, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT default_city, language, notify_email, notify_sms, notify_offers
           FROM user_preferences WHERE user_id = $1"#,
        user_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map_or_else(Preferences::default, |row| Preferences {
        default_city: row.default_city,
        language: row.language,
        notifications: Notifications {
            email: row.notify_email,
            sms: row.notify_sms,
            offers: row.notify_offers,
        },
    }))
}

/// Replaces the user's preferences with `chosen` (already parsed).
pub async fn replace(db: &PgPool, user_id: Uuid, chosen: &Preferences) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO user_preferences
               (user_id, default_city, language, notify_email, notify_sms, notify_offers)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (user_id) DO UPDATE SET
               default_city = EXCLUDED.default_city, language = EXCLUDED.language,
               notify_email = EXCLUDED.notify_email, notify_sms = EXCLUDED.notify_sms,
               notify_offers = EXCLUDED.notify_offers, updated_at = now()"#,
        user_id,
        chosen.default_city,
        chosen.language,
        chosen.notifications.email,
        chosen.notifications.sms,
        chosen.notifications.offers
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_are_checked() {
        for good in ["en", "hi", "kok", "en-IN"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in ["", "e", "EN", "english", "en-", "en-in", "en-IND", "-IN"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn a_blank_city_is_refused_and_a_city_is_trimmed() {
        let chosen = |city: &str| Preferences {
            default_city: Some(city.into()),
            ..Preferences::default()
        };
        assert!(chosen("   ").parse().is_err());
        assert_eq!(
            chosen("  Pune ").parse().unwrap().default_city.as_deref(),
            Some("Pune")
        );
    }
}
