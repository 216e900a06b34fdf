//! Shows: what is performed (title, artist, categories, media), and the show page, which has
//! everything a buyer needs in one answer: the show, its tour stops and their showtimes with
//! prices.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    DomainError,
    categories::Category,
    events::{self, Event},
    parse::{optional_text, required_text, web_url, web_url_or_null_schema, web_urls_schema},
    scopes::{self, Changed},
};
use crate::{
    cache::Cache,
    validation::{FieldError, object, object_or_null, schema, sent},
};

/// Images, trailer and promotional copy: shown, never queried into. Links are stored as the
/// URL parser normalises them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShowMedia {
    pub poster_url: Option<String>,
    pub banner_url: Option<String>,
    pub trailer_url: Option<String>,
    #[serde(default)]
    pub gallery: Vec<String>,
    pub promo_text: Option<String>,
}

/// [`ShowMedia`] as an editor sends it: what links the document promises to take is narrower
/// than every link a show may hold (addresses, ports, characters the parser encodes).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaInput {
    #[schema(schema_with = web_url_or_null_schema)]
    pub poster_url: Option<String>,
    #[schema(schema_with = web_url_or_null_schema)]
    pub banner_url: Option<String>,
    #[schema(schema_with = web_url_or_null_schema)]
    pub trailer_url: Option<String>,
    #[serde(default)]
    #[schema(schema_with = web_urls_schema::<30>)]
    pub gallery: Vec<String>,
    #[schema(schema_with = schema::optional_text_or_null::<2000>)]
    pub promo_text: Option<String>,
}

impl MediaInput {
    /// Checked, as stored.
    fn checked(self) -> Result<serde_json::Value, FieldError> {
        Ok(serde_json::to_value(self.parse()?).unwrap_or_default())
    }

    fn parse(self) -> Result<ShowMedia, FieldError> {
        let url = |field, value: Option<String>| value.map(|v| web_url(field, &v)).transpose();
        if self.gallery.len() > 30 {
            return Err(FieldError::new("media.gallery", "at most 30 images"));
        }
        Ok(ShowMedia {
            poster_url: url("media.poster_url", self.poster_url)?,
            banner_url: url("media.banner_url", self.banner_url)?,
            trailer_url: url("media.trailer_url", self.trailer_url)?,
            gallery: self
                .gallery
                .iter()
                .map(|image| web_url("media.gallery", image))
                .collect::<Result<_, _>>()?,
            promo_text: self
                .promo_text
                .map(|text| optional_text("media.promo_text", &text, 2_000))
                .transpose()?,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShow {
    #[schema(schema_with = schema::required_text::<200>)]
    pub title: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_text::<10000>)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_text::<200>)]
    pub artist: String,
    /// Category slugs.
    #[serde(default)]
    #[schema(schema_with = category_slugs_schema)]
    pub categories: Vec<String>,
    /// A language tag such as `en` or `hi-IN` (default `en`).
    #[schema(schema_with = language_or_null_schema)]
    pub language: Option<String>,
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_minutes: Option<i32>,
    #[schema(schema_with = schema::required_text_or_null::<20>)]
    pub age_rating: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub media: MediaInput,
    /// Buyers may cancel a paid booking for a refund until this many hours before the showtime;
    /// absent, they may not (admins still can refund).
    #[schema(minimum = 0, maximum = 8760)]
    pub refund_cutoff_hours: Option<i32>,
}

/// Changes to a show; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowChanges {
    #[schema(schema_with = schema::required_text_or_null::<200>)]
    pub title: Option<String>,
    #[schema(schema_with = schema::optional_text_or_null::<10000>)]
    pub description: Option<String>,
    #[schema(schema_with = schema::optional_text_or_null::<200>)]
    pub artist: Option<String>,
    #[schema(schema_with = category_slugs_or_null_schema)]
    pub categories: Option<Vec<String>>,
    #[schema(schema_with = language_or_null_schema)]
    pub language: Option<String>,
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_minutes: Option<i32>,
    #[schema(schema_with = schema::required_text_or_null::<20>)]
    pub age_rating: Option<String>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub media: Option<MediaInput>,
    /// `null` stops refunding buyers' cancellations.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 8760)]
    pub refund_cutoff_hours: Option<Option<i32>>,
}

fn language_or_null_schema() -> utoipa::openapi::Object {
    schema::string_or_null(schema::trimmed_string("[A-Za-z0-9-]{1,35}"))
}

/// Up to 20 slugs of categories that exist.
fn category_slugs_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .pattern(Some(super::categories::SLUG_PATTERN))
                .max_length(Some(100)),
        )
        .max_items(Some(20))
        .build()
}

fn category_slugs_or_null_schema() -> utoipa::openapi::Array {
    schema::list_or_null(category_slugs_schema())
}

/// The show page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Show {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub artist: String,
    pub language: String,
    pub duration_minutes: Option<i32>,
    pub age_rating: Option<String>,
    pub media: ShowMedia,
    pub categories: Vec<Category>,
    pub refund_cutoff_hours: Option<i32>,
    pub archived: bool,
    /// Tour stops with their showtimes (buyers see published showtimes only).
    pub events: Vec<Event>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct ShowFields {
    title: String,
    description: String,
    artist: String,
    language: String,
    duration_minutes: Option<i32>,
    age_rating: Option<String>,
    media: serde_json::Value,
    refund_cutoff_hours: Option<i32>,
}

impl ShowFields {
    #[allow(clippy::too_many_arguments)]
    fn parse(
        title: &str,
        description: &str,
        artist: &str,
        language: &str,
        duration_minutes: Option<i32>,
        age_rating: Option<&str>,
        media: serde_json::Value,
        refund_cutoff_hours: Option<i32>,
    ) -> Result<Self, FieldError> {
        if refund_cutoff_hours.is_some_and(|hours| !(0..=24 * 365).contains(&hours)) {
            return Err(FieldError::new(
                "refund_cutoff_hours",
                "must be between 0 and 8760",
            ));
        }
        if duration_minutes.is_some_and(|minutes| !(1..=1_440).contains(&minutes)) {
            return Err(FieldError::new(
                "duration_minutes",
                "must be between 1 and 1440",
            ));
        }
        let language = required_text("language", language, 35)?;
        if !language
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(FieldError::new(
                "language",
                "use a language tag such as en or hi-IN",
            ));
        }
        Ok(Self {
            title: required_text("title", title, 200)?,
            description: optional_text("description", description, 10_000)?,
            artist: optional_text("artist", artist, 200)?,
            language,
            duration_minutes,
            age_rating: age_rating
                .map(|rating| required_text("age_rating", rating, 20))
                .transpose()?,
            media,
            refund_cutoff_hours,
        })
    }
}

#[tracing::instrument(skip_all)]
pub async fn create(db: &PgPool, cache: &Cache, new: NewShow) -> Result<Show, DomainError> {
    let fields = ShowFields::parse(
        &new.title,
        &new.description,
        &new.artist,
        new.language.as_deref().unwrap_or("en"),
        new.duration_minutes,
        new.age_rating.as_deref(),
        new.media.checked()?,
        new.refund_cutoff_hours,
    )?;
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO shows (title, description, artist, language, duration_minutes, age_rating, media,
                            refund_cutoff_hours)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        fields.title,
        fields.description,
        fields.artist,
        fields.language,
        fields.duration_minutes,
        fields.age_rating,
        fields.media,
        fields.refund_cutoff_hours
    )
    .fetch_one(&mut *tx)
    .await?;
    set_categories(&mut tx, id, &new.categories).await?;
    finish(tx, cache, id).await
}

#[tracing::instrument(skip(db, cache, changes))]
pub async fn update(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    changes: ShowChanges,
) -> Result<Show, DomainError> {
    let mut tx = db.begin().await?;
    let current = sqlx::query!(
        "SELECT title, description, artist, language, duration_minutes, age_rating, media, refund_cutoff_hours
         FROM shows WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound("show"))?;
    // Media not sent stay as stored, unchecked: the stored links are the parser's own
    // normalised output, which may differ from (and be longer than) what the editor sent.
    let media = match changes.media {
        Some(media) => media.checked()?,
        None => current.media,
    };
    let fields = ShowFields::parse(
        changes.title.as_deref().unwrap_or(&current.title),
        changes
            .description
            .as_deref()
            .unwrap_or(&current.description),
        changes.artist.as_deref().unwrap_or(&current.artist),
        changes.language.as_deref().unwrap_or(&current.language),
        changes.duration_minutes.or(current.duration_minutes),
        changes
            .age_rating
            .as_deref()
            .or(current.age_rating.as_deref()),
        media,
        changes
            .refund_cutoff_hours
            .unwrap_or(current.refund_cutoff_hours),
    )?;
    sqlx::query!(
        "UPDATE shows SET title = $2, description = $3, artist = $4, language = $5,
                          duration_minutes = $6, age_rating = $7, media = $8,
                          refund_cutoff_hours = $9, updated_at = now()
         WHERE id = $1",
        id,
        fields.title,
        fields.description,
        fields.artist,
        fields.language,
        fields.duration_minutes,
        fields.age_rating,
        fields.media,
        fields.refund_cutoff_hours
    )
    .execute(&mut *tx)
    .await?;
    if let Some(categories) = &changes.categories {
        set_categories(&mut tx, id, categories).await?;
    }
    finish(tx, cache, id).await
}

/// Hides a show from buyers; its bookings and tickets stay valid.
#[tracing::instrument(skip(db, cache))]
pub async fn archive(db: &PgPool, cache: &Cache, id: Uuid) -> Result<Show, DomainError> {
    let mut tx = db.begin().await?;
    let found = sqlx::query!(
        "UPDATE shows SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    if found.rows_affected() == 0 {
        return Err(DomainError::NotFound("show"));
    }
    finish(tx, cache, id).await
}

/// Deletes a show with no events; one with events must be archived instead.
#[tracing::instrument(skip(db, cache))]
pub async fn delete(db: &PgPool, cache: &Cache, id: Uuid) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    let has_events = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM events WHERE show_id = $1) AS "has!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if has_events {
        return Err(DomainError::conflict(
            "IN_USE",
            "this show has events; delete them or archive the show instead",
        ));
    }
    let deleted = sqlx::query!("DELETE FROM shows WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(DomainError::NotFound("show"));
    }
    tx.commit().await?;
    cache
        .invalidate(&[scopes::show(id), scopes::SHOW_LISTINGS.to_owned()])
        .await;
    Ok(())
}

async fn set_categories(
    conn: &mut PgConnection,
    show_id: Uuid,
    slugs: &[String],
) -> Result<(), DomainError> {
    if slugs.len() > 20 {
        return Err(FieldError::new("categories", "at most 20 categories").into());
    }
    let ids = sqlx::query!(
        "SELECT id, slug FROM categories WHERE slug = ANY($1)",
        slugs
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(unknown) = slugs
        .iter()
        .find(|slug| !ids.iter().any(|row| &row.slug == *slug))
    {
        return Err(
            FieldError::new("categories", format!("no category with slug {unknown:?}")).into(),
        );
    }
    let ids: Vec<Uuid> = ids.into_iter().map(|row| row.id).collect();
    sqlx::query!("DELETE FROM show_categories WHERE show_id = $1", show_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO show_categories (show_id, category_id) SELECT $1, unnest($2::uuid[])",
        show_id,
        &ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cache: &Cache,
    id: Uuid,
) -> Result<Show, DomainError> {
    super::finish(tx, cache, Changed::Show(id), "show", async |conn| {
        load(conn, id, true).await
    })
    .await
}

/// The show page: `None` if there is none or (for buyers) it is archived.
pub async fn details(
    db: &PgPool,
    id: Uuid,
    include_unpublished: bool,
) -> Result<Option<Show>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    load(&mut conn, id, include_unpublished).await
}

async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    include_unpublished: bool,
) -> Result<Option<Show>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT id, title, description, artist, language, duration_minutes, age_rating, media,
                  refund_cutoff_hours, archived_at IS NOT NULL AS "archived!", created_at, updated_at
           FROM shows WHERE id = $1 AND ($2 OR archived_at IS NULL)"#,
        id,
        include_unpublished
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let categories = sqlx::query_as!(
        Category,
        "SELECT c.id, c.name, c.slug FROM categories c
         JOIN show_categories sc ON sc.category_id = c.id
         WHERE sc.show_id = $1 ORDER BY c.name",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let events = events::of_show(conn, id, include_unpublished).await?;
    Ok(Some(Show {
        id: row.id,
        title: row.title,
        description: row.description,
        artist: row.artist,
        language: row.language,
        duration_minutes: row.duration_minutes,
        age_rating: row.age_rating,
        media: serde_json::from_value(row.media).unwrap_or_default(),
        categories,
        refund_cutoff_hours: row.refund_cutoff_hours,
        archived: row.archived,
        events,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}
