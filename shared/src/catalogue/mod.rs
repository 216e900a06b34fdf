//! The catalogue: venues and their seat layouts, shows with their categories, events (a tour
//! stop at a venue), showtimes with their price tiers, and discovery.
//!
//! Editors write it through the functions here, each in one transaction that also says which
//! cache scopes it made stale ([`scopes`]); buyers read it through [`crate::cache`]. Publishing
//! a showtime turns the venue's layout into the showtime's seat inventory, which the booking
//! flow then owns.

pub mod categories;
pub mod discovery;
pub mod events;
pub mod layout;
mod parse;
pub mod scopes;
pub mod shows;
pub mod showtimes;
pub mod venues;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::DomainError;

/// Adds a section of `rows` rows of `per_row` seats to a venue's layout. Rows are labelled
/// from A upwards by rank, starting at `first_row_rank` (0 is closest to the stage).
pub async fn add_section(
    conn: &mut PgConnection,
    venue_id: Uuid,
    name: &str,
    sort_order: i32,
    first_row_rank: i32,
    rows: i32,
    per_row: i32,
) -> Result<Uuid, sqlx::Error> {
    let section_id = sqlx::query_scalar!(
        "INSERT INTO seat_sections (venue_id, name, sort_order) VALUES ($1, $2, $3) RETURNING id",
        venue_id,
        name,
        sort_order
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO seats (venue_id, section_id, row_label, row_rank, seat_number)
         SELECT $1, $2, chr(ascii('A') + $3 + r), $3 + r, n
         FROM generate_series(0, $4 - 1) AS r, generate_series(1, $5) AS n",
        venue_id,
        section_id,
        first_row_rank,
        rows,
        per_row
    )
    .execute(&mut *conn)
    .await?;
    Ok(section_id)
}

/// Ends a catalogue write: inside the transaction, finds the cache scopes it made stale and
/// reads the changed entity's page; commits; then invalidates those scopes.
async fn finish<T>(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cache: &crate::cache::Cache,
    changed: scopes::Changed,
    what: &'static str,
    page: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<T>, sqlx::Error>,
) -> Result<T, DomainError> {
    let stale = scopes::affected(&mut tx, changed).await?;
    let value = page(&mut tx).await?.ok_or(DomainError::NotFound(what))?;
    tx.commit().await?;
    cache.invalidate(&stale).await;
    Ok(value)
}

/// Creates the per-seat inventory of a showtime from its venue's layout in a single statement
/// (fast for tens of thousands of seats): for each price tier, the first `allocated_capacity`
/// seats of its section, best first. Seats beyond a section's allocation (house seats) and
/// sections without a tier are not sold. Running it again adds only seats that are missing.
#[tracing::instrument(skip(conn))]
pub async fn create_showtime_inventory(
    conn: &mut PgConnection,
    showtime_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let inserted = sqlx::query!(
        r#"
        INSERT INTO showtime_seats
            (showtime_id, seat_id, section_id, price_tier_id, row_rank, row_label, seat_number)
        SELECT pt.showtime_id, s.id, s.section_id, pt.id, s.row_rank, s.row_label, s.seat_number
        FROM price_tiers pt
        CROSS JOIN LATERAL (
            SELECT id, section_id, row_rank, row_label, seat_number
            FROM seats
            WHERE section_id = pt.section_id
            ORDER BY row_rank, seat_number
            LIMIT pt.allocated_capacity
        ) s
        WHERE pt.showtime_id = $1
        ON CONFLICT (showtime_id, seat_id) DO NOTHING
        "#,
        showtime_id
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected())
}
