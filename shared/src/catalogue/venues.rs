//! Venues: where they are, their rules, and their seat layout ([`super::layout`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    DomainError,
    layout::{self, Layout, SectionSummary},
    parse::{optional_text, required_text},
    scopes::{self, Changed},
};
use crate::{
    cache::Cache,
    validation::{FieldError, object, object_or_null, schema},
};

/// Age limit, bag policy and house rules, shown on the venue page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueRules {
    #[schema(minimum = 0, maximum = 255)]
    pub age_limit: Option<u8>,
    #[schema(schema_with = schema::optional_text_or_null::<500>)]
    pub bag_policy: Option<String>,
    /// House rules, each a line of text.
    #[serde(default)]
    #[schema(schema_with = schema::required_texts::<500, 50>)]
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    #[schema(schema_with = schema::required_text::<200>)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schema::optional_text::<500>)]
    pub address: String,
    #[schema(schema_with = schema::required_text::<100>)]
    pub city: String,
    /// Given with `longitude`, or not at all.
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: Option<f64>,
    #[serde(default, deserialize_with = "object")]
    pub rules: VenueRules,
    /// The seat layout, which can also be set later.
    #[serde(default, deserialize_with = "object_or_null")]
    pub layout: Option<layout::LayoutInput>,
}

/// Changes to a venue; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueChanges {
    #[schema(schema_with = schema::required_text_or_null::<200>)]
    pub name: Option<String>,
    #[schema(schema_with = schema::optional_text_or_null::<500>)]
    pub address: Option<String>,
    #[schema(schema_with = schema::required_text_or_null::<100>)]
    pub city: Option<String>,
    /// Given with `longitude`, or not at all.
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: Option<f64>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub rules: Option<VenueRules>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Venue {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub city: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// Seats in the layout.
    pub capacity: i32,
    pub rules: serde_json::Value,
    pub archived: bool,
    pub sections: Vec<SectionSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A venue's fields, checked.
struct VenueFields {
    name: String,
    address: String,
    city: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
    rules: serde_json::Value,
}

impl VenueFields {
    fn parse(
        name: &str,
        address: &str,
        city: &str,
        latitude: Option<f64>,
        longitude: Option<f64>,
        rules: &VenueRules,
    ) -> Result<Self, FieldError> {
        if latitude.is_some() != longitude.is_some() {
            return Err(FieldError::new(
                "latitude",
                "give latitude and longitude together",
            ));
        }
        if latitude.is_some_and(|l| !(-90.0..=90.0).contains(&l)) {
            return Err(FieldError::new("latitude", "must be between -90 and 90"));
        }
        if longitude.is_some_and(|l| !(-180.0..=180.0).contains(&l)) {
            return Err(FieldError::new("longitude", "must be between -180 and 180"));
        }
        let rules = VenueRules {
            age_limit: rules.age_limit.filter(|&age| age > 0),
            bag_policy: rules
                .bag_policy
                .as_deref()
                .map(|policy| optional_text("rules.bag_policy", policy, 500))
                .transpose()?,
            rules: rules
                .rules
                .iter()
                .map(|rule| required_text("rules.rules", rule, 500))
                .collect::<Result<_, _>>()?,
        };
        if rules.rules.len() > 50 {
            return Err(FieldError::new("rules.rules", "at most 50 rules"));
        }
        Ok(Self {
            name: required_text("name", name, 200)?,
            address: optional_text("address", address, 500)?,
            city: required_text("city", city, 100)?,
            latitude,
            longitude,
            rules: serde_json::to_value(rules).unwrap_or_default(),
        })
    }
}

#[tracing::instrument(skip_all)]
pub async fn create(db: &PgPool, cache: &Cache, new: NewVenue) -> Result<Venue, DomainError> {
    let fields = VenueFields::parse(
        &new.name,
        &new.address,
        &new.city,
        new.latitude,
        new.longitude,
        &new.rules,
    )?;
    let layout = new.layout.map(Layout::parse).transpose()?;
    let mut tx = db.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO venues (name, address, city, latitude, longitude, rules)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        fields.name,
        fields.address,
        fields.city,
        fields.latitude,
        fields.longitude,
        fields.rules
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(layout) = &layout {
        layout::replace(&mut tx, id, layout).await?;
    }
    let venue = load(&mut tx, id)
        .await?
        .ok_or(DomainError::NotFound("venue"))?;
    tx.commit().await?;
    cache.invalidate(&[scopes::VENUE_LISTINGS.to_owned()]).await;
    Ok(venue)
}

#[tracing::instrument(skip(db, cache, changes))]
pub async fn update(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    changes: VenueChanges,
) -> Result<Venue, DomainError> {
    let mut tx = db.begin().await?;
    let current = load_for_update(&mut tx, id).await?;
    let rules: VenueRules = match changes.rules {
        Some(rules) => rules,
        None => serde_json::from_value(current.rules).unwrap_or_default(),
    };
    let (latitude, longitude) = match (changes.latitude, changes.longitude) {
        (None, None) => (current.latitude, current.longitude),
        given => given,
    };
    let fields = VenueFields::parse(
        changes.name.as_deref().unwrap_or(&current.name),
        changes.address.as_deref().unwrap_or(&current.address),
        changes.city.as_deref().unwrap_or(&current.city),
        latitude,
        longitude,
        &rules,
    )?;
    sqlx::query!(
        "UPDATE venues SET name = $2, address = $3, city = $4, latitude = $5, longitude = $6,
                           rules = $7, updated_at = now()
         WHERE id = $1",
        id,
        fields.name,
        fields.address,
        fields.city,
        fields.latitude,
        fields.longitude,
        fields.rules
    )
    .execute(&mut *tx)
    .await?;
    finish(tx, cache, id).await
}

/// Replaces the seat layout (only while no showtime prices it).
#[tracing::instrument(skip(db, cache, input))]
pub async fn replace_layout(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    input: layout::LayoutInput,
) -> Result<Venue, DomainError> {
    let layout = Layout::parse(input)?;
    let mut tx = db.begin().await?;
    load_for_update(&mut tx, id).await?;
    layout::replace(&mut tx, id, &layout).await?;
    finish(tx, cache, id).await
}

/// Hides a venue from listings and new events; what exists keeps working.
#[tracing::instrument(skip(db, cache))]
pub async fn archive(db: &PgPool, cache: &Cache, id: Uuid) -> Result<Venue, DomainError> {
    let mut tx = db.begin().await?;
    load_for_update(&mut tx, id).await?;
    sqlx::query!(
        "UPDATE venues SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    finish(tx, cache, id).await
}

/// Deletes a venue nothing refers to yet; one with events must be archived instead.
#[tracing::instrument(skip(db, cache))]
pub async fn delete(db: &PgPool, cache: &Cache, id: Uuid) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    load_for_update(&mut tx, id).await?;
    let has_events = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM events WHERE venue_id = $1) AS "has!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if has_events {
        return Err(DomainError::conflict(
            "IN_USE",
            "events take place at this venue; archive it instead of deleting it",
        ));
    }
    let stale = scopes::affected(&mut tx, Changed::Venue(id)).await?;
    sqlx::query!("DELETE FROM seats WHERE venue_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM seat_sections WHERE venue_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM venues WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    cache.invalidate(&stale).await;
    Ok(())
}

async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cache: &Cache,
    id: Uuid,
) -> Result<Venue, DomainError> {
    super::finish(tx, cache, Changed::Venue(id), "venue", async |conn| {
        load(conn, id).await
    })
    .await
}

struct Current {
    name: String,
    address: String,
    city: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
    rules: serde_json::Value,
}

async fn load_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Current, DomainError> {
    sqlx::query_as!(
        Current,
        "SELECT name, address, city, latitude, longitude, rules FROM venues WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(DomainError::NotFound("venue"))
}

/// A venue with its section summaries, or `None`.
pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<Venue>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT id, name, address, city, latitude, longitude, capacity, rules,
                  archived_at IS NOT NULL AS "archived!", created_at, updated_at
           FROM venues WHERE id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Venue {
        id: row.id,
        name: row.name,
        address: row.address,
        city: row.city,
        latitude: row.latitude,
        longitude: row.longitude,
        capacity: row.capacity,
        rules: row.rules,
        archived: row.archived,
        sections: layout::summaries(conn, id).await?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// The venue page.
pub async fn details(db: &PgPool, id: Uuid) -> Result<Option<Venue>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    load(&mut conn, id).await
}

/// Where something takes place, as event and showtime pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VenueBrief {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}
