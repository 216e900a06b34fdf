//! Events: a stop of a show's tour at one venue, holding that stop's showtimes.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    DomainError,
    parse::optional_text,
    scopes::{self, Changed},
    showtimes::{self, Showtime},
    venues::VenueBrief,
};
use crate::{
    cache::Cache,
    validation::{FieldError, schema, sent},
};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub show_id: Uuid,
    pub venue_id: Uuid,
    /// Shown beside the show's title, such as the city or the tour leg.
    #[schema(schema_with = schema::optional_text_or_null::<200>)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventChanges {
    /// The new title; `null` or empty for none, absent to keep it.
    #[serde(default, deserialize_with = "sent")]
    #[schema(schema_with = schema::optional_text_or_null::<200>)]
    pub title: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub show_id: Uuid,
    pub title: Option<String>,
    pub venue: VenueBrief,
    pub archived: bool,
    /// Soonest first (buyers see published showtimes only).
    pub showtimes: Vec<Showtime>,
}

fn title(value: Option<&str>) -> Result<Option<String>, FieldError> {
    value
        .map(|title| optional_text("title", title, 200))
        .transpose()
        .map(|title| title.filter(|t| !t.is_empty()))
}

#[tracing::instrument(skip(db, cache))]
pub async fn create(db: &PgPool, cache: &Cache, new: NewEvent) -> Result<Event, DomainError> {
    let title = title(new.title.as_deref())?;
    let mut tx = db.begin().await?;
    let show_archived = sqlx::query_scalar!(
        r#"SELECT archived_at IS NOT NULL AS "archived!" FROM shows WHERE id = $1 FOR SHARE"#,
        new.show_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| FieldError::new("show_id", "no such show"))?;
    let venue_archived = sqlx::query_scalar!(
        r#"SELECT archived_at IS NOT NULL AS "archived!" FROM venues WHERE id = $1 FOR SHARE"#,
        new.venue_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| FieldError::new("venue_id", "no such venue"))?;
    if show_archived {
        return Err(FieldError::new("show_id", "the show is archived").into());
    }
    if venue_archived {
        return Err(FieldError::new("venue_id", "the venue is archived").into());
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO events (show_id, venue_id, title) VALUES ($1, $2, $3) RETURNING id",
        new.show_id,
        new.venue_id,
        title
    )
    .fetch_one(&mut *tx)
    .await?;
    finish(tx, cache, id).await
}

#[tracing::instrument(skip(db, cache))]
pub async fn update(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    changes: EventChanges,
) -> Result<Event, DomainError> {
    let new_title = changes
        .title
        .map(|sent| title(sent.as_deref()))
        .transpose()?;
    let keep_title = new_title.is_none();
    let mut tx = db.begin().await?;
    let found = sqlx::query!(
        "UPDATE events SET title = CASE WHEN $3 THEN $2 ELSE title END, updated_at = now()
         WHERE id = $1",
        id,
        new_title.flatten(),
        !keep_title
    )
    .execute(&mut *tx)
    .await?;
    if found.rows_affected() == 0 {
        return Err(DomainError::NotFound("event"));
    }
    finish(tx, cache, id).await
}

/// Hides an event and its showtimes from buyers; bookings stay valid.
#[tracing::instrument(skip(db, cache))]
pub async fn archive(db: &PgPool, cache: &Cache, id: Uuid) -> Result<Event, DomainError> {
    let mut tx = db.begin().await?;
    let found = sqlx::query!(
        "UPDATE events SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    if found.rows_affected() == 0 {
        return Err(DomainError::NotFound("event"));
    }
    finish(tx, cache, id).await
}

/// Deletes an event and its showtimes if nobody booked any of them.
#[tracing::instrument(skip(db, cache))]
pub async fn delete(db: &PgPool, cache: &Cache, id: Uuid) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    let booked = sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM bookings b JOIN showtimes st ON st.id = b.showtime_id
               WHERE st.event_id = $1) AS "booked!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if booked {
        return Err(DomainError::conflict(
            "HAS_BOOKINGS",
            "buyers have booked this event's showtimes; archive it instead",
        ));
    }
    let stale = scopes::affected(&mut tx, Changed::Event(id)).await?;
    sqlx::query!("DELETE FROM showtimes WHERE event_id = $1", id)
        .execute(&mut *tx)
        .await?;
    let deleted = sqlx::query!("DELETE FROM events WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(DomainError::NotFound("event"));
    }
    tx.commit().await?;
    cache.invalidate(&stale).await;
    Ok(())
}

async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cache: &Cache,
    id: Uuid,
) -> Result<Event, DomainError> {
    super::finish(tx, cache, Changed::Event(id), "event", async |conn| {
        Ok(load(conn, Some(id), None, true).await?.pop())
    })
    .await
}

/// The event page: `None` if there is none or (for buyers) it is archived.
pub async fn details(
    db: &PgPool,
    id: Uuid,
    include_unpublished: bool,
) -> Result<Option<Event>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    Ok(load(&mut conn, Some(id), None, include_unpublished)
        .await?
        .pop())
}

/// A show's events, for its page.
pub(super) async fn of_show(
    conn: &mut PgConnection,
    show_id: Uuid,
    include_unpublished: bool,
) -> Result<Vec<Event>, sqlx::Error> {
    load(conn, None, Some(show_id), include_unpublished).await
}

async fn load(
    conn: &mut PgConnection,
    event_id: Option<Uuid>,
    show_id: Option<Uuid>,
    include_unpublished: bool,
) -> Result<Vec<Event>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT e.id, e.show_id, e.title, e.archived_at IS NOT NULL AS "archived!",
                  v.id AS venue_id, v.name, v.city, v.address, v.latitude, v.longitude,
                  (SELECT min(starts_at) FROM showtimes WHERE event_id = e.id) AS first_showtime
           FROM events e JOIN venues v ON v.id = e.venue_id
           WHERE (e.id = $1 OR e.show_id = $2) AND ($3 OR e.archived_at IS NULL)
           ORDER BY first_showtime NULLS LAST, e.id"#,
        event_id,
        show_id,
        include_unpublished
    )
    .fetch_all(&mut *conn)
    .await?;
    let event_ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let showtime_ids = sqlx::query_scalar!(
        "SELECT id FROM showtimes WHERE event_id = ANY($1)",
        &event_ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let showtimes = showtimes::load(conn, &showtime_ids, include_unpublished).await?;
    Ok(rows
        .into_iter()
        .map(|row| Event {
            showtimes: showtimes
                .iter()
                .filter(|st| st.event_id == row.id)
                .cloned()
                .collect(),
            id: row.id,
            show_id: row.show_id,
            title: row.title,
            venue: VenueBrief {
                id: row.venue_id,
                name: row.name,
                city: row.city,
                address: row.address,
                latitude: row.latitude,
                longitude: row.longitude,
            },
            archived: row.archived,
        })
        .collect())
}
