//! Discovery: what buyers browse. Shows with published, upcoming showtimes, filtered by city,
//! category, dates, artist and free text; events (a show's stop at a venue) by show, venue,
//! city and dates; venues by city and name.
//!
//! Pages are keyset-paginated: a cursor holds the last item's sort key and id, and the next
//! page starts strictly after it. Items added or removed between two requests therefore
//! never make a page repeat or skip an item that was there all along, as offsets would.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::scopes;
use crate::{
    cache::{Entry, Kind},
    money::Paise,
    validation::{
        FieldError, PageSize, empty_is_absent, empty_is_absent_name, filter_text, schema,
    },
};

const DEFAULT_PAGE: u32 = 20;
const LARGEST_PAGE: u32 = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowSort {
    /// Soonest matching showtime first.
    #[default]
    Date,
    Title,
    /// Most recently added first.
    Newest,
}

impl ShowSort {
    fn as_str(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::Title => "title",
            Self::Newest => "newest",
        }
    }
}

/// The longest text a listing filter takes.
const FILTER_TEXT_MAX: usize = 200;

/// Filters of the show listing, as the query string carries them.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowFilters {
    /// City of the venue (any case).
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub city: Option<String>,
    /// Category slug.
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub category: Option<String>,
    /// Showtimes starting at or after this instant (default: now).
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub from: Option<DateTime<Utc>>,
    /// Showtimes starting before this instant.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub to: Option<DateTime<Utc>>,
    /// Exact artist name (any case).
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub artist: Option<String>,
    /// Words to find in the title, artist or description (prefixes match).
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub q: Option<String>,
    #[serde(default, deserialize_with = "empty_is_absent_name")]
    pub sort: Option<ShowSort>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub cursor: Option<String>,
}

/// A show in a listing: only what a card shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShowCard {
    pub id: Uuid,
    pub title: String,
    pub artist: String,
    pub language: String,
    pub age_rating: Option<String>,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
    pub categories: Vec<String>,
    /// Cities of the matching showtimes.
    pub cities: Vec<String>,
    /// The soonest matching showtime.
    pub next_showtime_at: DateTime<Utc>,
    /// The lowest price of the matching showtimes.
    pub min_price_paise: Option<Paise>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Cursor {
    sort: String,
    key: String,
    id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(value: &str, sort: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "cursor",
                "not a cursor from this listing; start again without one",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(value.trim())
            .map_err(|_| invalid())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.sort != sort {
            return Err(FieldError::new(
                "cursor",
                "this cursor belongs to another sort order",
            ));
        }
        Ok(cursor)
    }
}

fn page_size(limit: Option<u32>) -> Result<i64, FieldError> {
    Ok(PageSize::parse(limit, DEFAULT_PAGE, LARGEST_PAGE)?.as_i64())
}

fn check_window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), FieldError> {
    match (from, to) {
        (Some(from), Some(to)) if to <= from => Err(FieldError::new("to", "must be after from")),
        _ => Ok(()),
    }
}

/// A page from rows fetched with `LIMIT limit + 1`: the extra row only says there is more,
/// and the cursor points after the last row kept. `key` gives a row's sort key and id.
fn page_of<R, T>(
    rows: Vec<R>,
    limit: i64,
    sort: &str,
    key: impl Fn(&R) -> (String, Uuid),
    item: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() as i64 > limit;
    let mut last = None;
    let items = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|row| {
            last = Some(key(&row));
            item(row)
        })
        .collect();
    let next_cursor = last.filter(|_| more).map(|(key, id)| {
        Cursor {
            sort: sort.to_owned(),
            key,
            id,
        }
        .encode()
    });
    Page { items, next_cursor }
}

/// Free text as a prefix-matching tsquery over its words. Only letters and digits reach the
/// query, so its operators cannot be injected.
fn text_query(q: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(q) = filter_text("q", q, FILTER_TEXT_MAX)? else {
        return Ok(None);
    };
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(10)
        .map(|word| format!("{}:*", word.to_lowercase()))
        .collect();
    Ok((!words.is_empty()).then(|| words.join(" & ")))
}

/// The show listing's filters, checked, and the cache entry of the page they ask for.
#[derive(Debug, Clone, Serialize)]
pub struct ShowQuery {
    city: Option<String>,
    category: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    artist: Option<String>,
    text: Option<String>,
    sort: ShowSort,
    limit: i64,
    #[serde(skip)]
    after: Option<Cursor>,
    cursor: Option<String>,
}

impl ShowQuery {
    pub fn parse(filters: ShowFilters) -> Result<Self, FieldError> {
        check_window(filters.from, filters.to)?;
        let sort = filters.sort.unwrap_or_default();
        let after = filters
            .cursor
            .as_deref()
            .map(|cursor| Cursor::decode(cursor, sort.as_str()))
            .transpose()?;
        Ok(Self {
            city: filter_text("city", filters.city.as_deref(), FILTER_TEXT_MAX)?,
            category: filter_text("category", filters.category.as_deref(), FILTER_TEXT_MAX)?,
            from: filters.from,
            to: filters.to,
            artist: filter_text("artist", filters.artist.as_deref(), FILTER_TEXT_MAX)?,
            text: text_query(filters.q.as_deref())?,
            sort,
            limit: page_size(filters.limit)?,
            cursor: after.as_ref().map(Cursor::encode),
            after,
        })
    }

    /// The cache entry of this page, in the group every show write makes stale.
    pub fn cache_entry(&self) -> Entry {
        listing_entry("shows", scopes::SHOW_LISTINGS, self)
    }
}

fn listing_entry(name: &str, scope: &str, query: &impl Serialize) -> Entry {
    let canonical = serde_json::to_vec(query).unwrap_or_default();
    Entry {
        kind: Kind::Listing,
        key: format!("{name}?{}", hex::encode(Sha256::digest(canonical))),
        scope: scope.to_owned(),
    }
}

#[tracing::instrument(skip(db))]
pub async fn shows(db: &PgPool, query: &ShowQuery) -> Result<Option<Page<ShowCard>>, sqlx::Error> {
    let (after_key, after_id) = match &query.after {
        Some(cursor) => (Some(cursor.key.clone()), Some(cursor.id)),
        None => (None, None),
    };
    let rows = sqlx::query!(
        r#"
        WITH matching AS (
            SELECT e.show_id, st.starts_at, v.city,
                   (SELECT min(price_paise) FROM price_tiers WHERE showtime_id = st.id) AS min_price
            FROM showtimes st
            JOIN events e ON e.id = st.event_id
            JOIN venues v ON v.id = e.venue_id
            WHERE st.status IN ('ON_SALE', 'SOLD_OUT')
              AND e.archived_at IS NULL
              AND st.starts_at >= greatest(now(), coalesce($1, now()))
              AND ($2::timestamptz IS NULL OR st.starts_at < $2)
              AND ($3::text IS NULL OR lower(v.city) = lower($3))
        ),
        per_show AS (
            SELECT show_id, min(starts_at) AS next_at, min(min_price) AS min_price,
                   array_agg(DISTINCT city ORDER BY city) AS cities
            FROM matching GROUP BY show_id
        ),
        cards AS (
            SELECT s.id, s.title, s.artist, s.language, s.age_rating, s.duration_minutes,
                   s.media->>'poster_url' AS poster_url, p.next_at, p.min_price, p.cities,
                   CASE $4::text
                       WHEN 'title' THEN lower(s.title)
                       WHEN 'newest' THEN lpad((9000000000000000
                           - (extract(epoch FROM s.created_at) * 1000000)::bigint)::text, 20, '0')
                       ELSE lpad(((extract(epoch FROM p.next_at) * 1000000)::bigint)::text, 20, '0')
                   END AS sort_key
            FROM per_show p JOIN shows s ON s.id = p.show_id
            WHERE s.archived_at IS NULL
              AND ($5::text IS NULL OR EXISTS (
                  SELECT 1 FROM show_categories sc JOIN categories c ON c.id = sc.category_id
                  WHERE sc.show_id = s.id AND c.slug = $5))
              AND ($6::text IS NULL OR lower(s.artist) = lower($6))
              AND ($7::text IS NULL OR s.search @@ to_tsquery('simple', $7))
        )
        SELECT c.id AS "id!", c.title AS "title!", c.artist AS "artist!", c.language AS "language!",
               c.age_rating, c.duration_minutes, c.poster_url, c.next_at AS "next_at!",
               c.min_price AS "min_price: Paise", c.cities AS "cities!", c.sort_key AS "sort_key!",
               ARRAY(SELECT cat.slug FROM show_categories sc JOIN categories cat ON cat.id = sc.category_id
                     WHERE sc.show_id = c.id ORDER BY cat.slug) AS "categories!"
        FROM cards c
        WHERE $8::text IS NULL OR (c.sort_key, c.id) > ($8, $9::uuid)
        ORDER BY c.sort_key, c.id
        LIMIT $10
        "#,
        query.from,
        query.to,
        query.city,
        query.sort.as_str(),
        query.category,
        query.artist,
        query.text,
        after_key,
        after_id,
        query.limit + 1
    )
    .fetch_all(db)
    .await?;
    Ok(Some(page_of(
        rows,
        query.limit,
        query.sort.as_str(),
        |row| (row.sort_key.clone(), row.id),
        |row| ShowCard {
            id: row.id,
            title: row.title,
            artist: row.artist,
            language: row.language,
            age_rating: row.age_rating,
            duration_minutes: row.duration_minutes,
            poster_url: row.poster_url,
            categories: row.categories,
            cities: row.cities,
            next_showtime_at: row.next_at,
            min_price_paise: row.min_price,
        },
    )))
}

/// Filters of the venue listing.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VenueFilters {
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub city: Option<String>,
    /// Part of the venue's name.
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub limit: Option<u32>,
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VenueQuery {
    city: Option<String>,
    name: Option<String>,
    limit: i64,
    #[serde(skip)]
    after: Option<Cursor>,
    cursor: Option<String>,
}

impl VenueQuery {
    pub fn parse(filters: VenueFilters) -> Result<Self, FieldError> {
        let after = filters
            .cursor
            .as_deref()
            .map(|cursor| Cursor::decode(cursor, "name"))
            .transpose()?;
        Ok(Self {
            city: filter_text("city", filters.city.as_deref(), FILTER_TEXT_MAX)?,
            name: filter_text("q", filters.q.as_deref(), FILTER_TEXT_MAX)?,
            limit: page_size(filters.limit)?,
            cursor: after.as_ref().map(Cursor::encode),
            after,
        })
    }

    pub fn cache_entry(&self) -> Entry {
        listing_entry("venues", scopes::VENUE_LISTINGS, self)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VenueCard {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    pub capacity: i32,
}

#[tracing::instrument(skip(db))]
pub async fn venues(
    db: &PgPool,
    query: &VenueQuery,
) -> Result<Option<Page<VenueCard>>, sqlx::Error> {
    let (after_key, after_id) = match &query.after {
        Some(cursor) => (Some(cursor.key.clone()), Some(cursor.id)),
        None => (None, None),
    };
    // LIKE's wildcards in the searched text are meant literally.
    let pattern = query.name.as_ref().map(|name| {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query_as!(
        VenueCard,
        r#"SELECT id, name, city, address, capacity FROM venues
           WHERE archived_at IS NULL
             AND ($1::text IS NULL OR lower(city) = lower($1))
             AND ($2::text IS NULL OR name ILIKE $2)
             AND ($3::text IS NULL OR (name, id) > ($3, $4::uuid))
           ORDER BY name, id
           LIMIT $5"#,
        query.city,
        pattern,
        after_key,
        after_id,
        query.limit + 1
    )
    .fetch_all(db)
    .await?;
    Ok(Some(page_of(
        rows,
        query.limit,
        "name",
        |venue| (venue.name.clone(), venue.id),
        |venue| venue,
    )))
}

/// The event listing's one order, named in its cursors so a show listing's cursor is refused.
const EVENT_ORDER: &str = "event-date";

/// Filters of the event listing.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventFilters {
    /// Only this show's events.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub show_id: Option<Uuid>,
    /// Only events at this venue.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub venue_id: Option<Uuid>,
    /// City of the venue (any case).
    #[param(schema_with = schema::filter_text::<FILTER_TEXT_MAX>)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub city: Option<String>,
    /// Events with a showtime starting at or after this instant (default: now).
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub from: Option<DateTime<Utc>>,
    /// Events with a showtime starting before this instant.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub to: Option<DateTime<Utc>>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "empty_is_absent")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventQuery {
    show_id: Option<Uuid>,
    venue_id: Option<Uuid>,
    city: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
    #[serde(skip)]
    after: Option<Cursor>,
    cursor: Option<String>,
}

impl EventQuery {
    pub fn parse(filters: EventFilters) -> Result<Self, FieldError> {
        check_window(filters.from, filters.to)?;
        let after = filters
            .cursor
            .as_deref()
            .map(|cursor| Cursor::decode(cursor, EVENT_ORDER))
            .transpose()?;
        Ok(Self {
            show_id: filters.show_id,
            venue_id: filters.venue_id,
            city: filter_text("city", filters.city.as_deref(), FILTER_TEXT_MAX)?,
            from: filters.from,
            to: filters.to,
            limit: page_size(filters.limit)?,
            cursor: after.as_ref().map(Cursor::encode),
            after,
        })
    }

    /// The cache entry of this page, in the group every catalogue write makes stale.
    pub fn cache_entry(&self) -> Entry {
        listing_entry("events", scopes::SHOW_LISTINGS, self)
    }
}

/// An event in a listing: the show, the venue, and when its matching showtimes are.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventCard {
    pub id: Uuid,
    /// The stop's own name, if it has one (a festival day, a tour leg).
    pub title: Option<String>,
    pub show_id: Uuid,
    pub show_title: String,
    pub venue_id: Uuid,
    pub venue_name: String,
    pub city: String,
    /// The first and last matching showtimes, and how many there are.
    pub first_showtime_at: DateTime<Utc>,
    pub last_showtime_at: DateTime<Utc>,
    pub showtimes: i64,
}

/// Events with published, upcoming showtimes in the window, soonest first.
#[tracing::instrument(skip(db))]
pub async fn events(
    db: &PgPool,
    query: &EventQuery,
) -> Result<Option<Page<EventCard>>, sqlx::Error> {
    let (after_key, after_id) = match &query.after {
        Some(cursor) => (Some(cursor.key.clone()), Some(cursor.id)),
        None => (None, None),
    };
    let rows = sqlx::query!(
        r#"
        WITH cards AS (
            SELECT e.id, e.title, e.show_id, s.title AS show_title, e.venue_id,
                   v.name AS venue_name, v.city,
                   min(st.starts_at) AS first_at, max(st.starts_at) AS last_at,
                   count(*) AS showtimes
            FROM events e
            JOIN shows s ON s.id = e.show_id AND s.archived_at IS NULL
            JOIN venues v ON v.id = e.venue_id
            JOIN showtimes st ON st.event_id = e.id
            WHERE e.archived_at IS NULL
              AND st.status IN ('ON_SALE', 'SOLD_OUT')
              AND st.starts_at >= greatest(now(), coalesce($1, now()))
              AND ($2::timestamptz IS NULL OR st.starts_at < $2)
              AND ($3::uuid IS NULL OR e.show_id = $3)
              AND ($4::uuid IS NULL OR e.venue_id = $4)
              AND ($5::text IS NULL OR lower(v.city) = lower($5))
            GROUP BY e.id, s.title, v.name, v.city
        )
        SELECT id AS "id!", title, show_id AS "show_id!", show_title AS "show_title!",
               venue_id AS "venue_id!", venue_name AS "venue_name!", city AS "city!",
               first_at AS "first_at!", last_at AS "last_at!", showtimes AS "showtimes!",
               lpad(((extract(epoch FROM first_at) * 1000000)::bigint)::text, 20, '0')
                   AS "sort_key!"
        FROM cards
        WHERE $6::text IS NULL
           OR (lpad(((extract(epoch FROM first_at) * 1000000)::bigint)::text, 20, '0'), id)
              > ($6, $7::uuid)
        ORDER BY first_at, id
        LIMIT $8
        "#,
        query.from,
        query.to,
        query.show_id,
        query.venue_id,
        query.city,
        after_key,
        after_id,
        query.limit + 1
    )
    .fetch_all(db)
    .await?;
    Ok(Some(page_of(
        rows,
        query.limit,
        EVENT_ORDER,
        |row| (row.sort_key.clone(), row.id),
        |row| EventCard {
            id: row.id,
            title: row.title,
            show_id: row.show_id,
            show_title: row.show_title,
            venue_id: row.venue_id,
            venue_name: row.venue_name,
            city: row.city,
            first_showtime_at: row.first_at,
            last_showtime_at: row.last_at,
            showtimes: row.showtimes,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_cannot_inject_tsquery_operators() {
        assert_eq!(
            text_query(Some("Kunal  kam")).unwrap().unwrap(),
            "kunal:* & kam:*"
        );
        assert_eq!(
            text_query(Some("a|b & !c:*")).unwrap().unwrap(),
            "a:* & b:* & c:*"
        );
        assert_eq!(text_query(Some(" !&| ")).unwrap(), None);
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let cursor = Cursor {
            sort: "title".into(),
            key: "abc".into(),
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&cursor.encode(), "title").unwrap(), cursor);
        assert!(Cursor::decode(&cursor.encode(), "date").is_err());
        assert!(Cursor::decode("garbage!", "title").is_err());
    }

    #[test]
    fn pages_are_bounded() {
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(10_000)).is_err());
        assert_eq!(page_size(None).unwrap(), 20);
    }
}
