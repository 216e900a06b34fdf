//! A venue's seat layout: sections of rows of seats, entered seat by seat or generated from
//! ranges ("rows A-T, seats 1-30, skip 13"), parsed into a [`Layout`] that cannot overlap, and
//! written in one transaction with batch inserts.
//!
//! A layout can be replaced only while no showtime prices its sections: published inventory
//! and bookings point at its seats.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{DomainError, parse::required_text};
use crate::validation::{
    FieldError, object_or_null, objects,
    schema::{self, SPACE},
};

/// Most seats a venue may have.
pub const MAX_SEATS: usize = 100_000;
const MAX_SECTIONS: usize = 200;
const MAX_SEAT_NUMBER: u32 = 9_999;
const MAX_ROW_LABEL: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "seat_kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatKind {
    Standard,
    Accessible,
    Aisle,
    Companion,
    RestrictedView,
}

/// A layout as an editor sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutInput {
    #[schema(min_items = 1, max_items = 200)]
    #[serde(deserialize_with = "objects")]
    pub sections: Vec<SectionInput>,
    /// If given, the layout must have exactly this many seats.
    #[schema(minimum = 1, maximum = 100_000)]
    pub expected_capacity: Option<u32>,
}

/// A section: generated rows, rows listed seat by seat, or both (generated rows first).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionInput {
    #[schema(schema_with = schema::required_text::<100>)]
    pub name: String,
    /// Lower is closer to the stage; best-available looks there first. Defaults to the
    /// section's position in the list.
    pub sort_order: Option<i32>,
    #[serde(default, deserialize_with = "object_or_null")]
    pub generate: Option<RowsGenerator>,
    #[serde(default, deserialize_with = "objects")]
    pub rows: Vec<RowInput>,
}

/// Rows generated from ranges, for example rows "A-T", seats "1-30", skipping seat 13.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowsGenerator {
    /// Row labels: a letter range ("A-T", "AA-AF"), a number range ("1-20") or one label.
    #[schema(schema_with = row_range_schema)]
    pub rows: String,
    /// Seat numbers of every row: "1-30".
    #[schema(schema_with = seat_range_schema)]
    pub seats: String,
    #[serde(default)]
    pub skip_rows: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = skipped_seats_schema)]
    pub skip_seats: Vec<u32>,
    /// Seats of another kind than standard.
    #[serde(default, deserialize_with = "objects")]
    pub kinds: Vec<KindOverride>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KindOverride {
    #[schema(schema_with = row_label_schema)]
    pub row: String,
    /// Seat numbers: "1-2" or "7".
    #[schema(schema_with = seat_range_schema)]
    pub seats: String,
    pub kind: SeatKind,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RowInput {
    #[schema(schema_with = row_label_schema)]
    pub label: String,
    #[schema(min_items = 1)]
    #[serde(deserialize_with = "objects")]
    pub seats: Vec<SeatInput>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatInput {
    #[schema(minimum = 1, maximum = 9999)]
    pub number: u32,
    #[serde(default = "standard")]
    pub kind: SeatKind,
}

// The document's statement of the parsing below. A range's order, its span and what a
// generator leaves after skipping are for the parser to tell.
const ROW_LABEL: &str = "[A-Za-z0-9]{1,8}";
const SEAT_NUMBER: &str = r"\+?0*[1-9][0-9]{0,3}";

fn row_label_schema() -> utoipa::openapi::Object {
    schema::trimmed_string(ROW_LABEL)
}

fn row_range_schema() -> utoipa::openapi::Object {
    schema::trimmed_string(&format!(
        "{ROW_LABEL}|[0-9]{{1,8}}{SPACE}*-{SPACE}*[0-9]{{1,8}}|[A-Za-z]{{1,3}}{SPACE}*-{SPACE}*[A-Za-z]{{1,3}}"
    ))
}

fn seat_range_schema() -> utoipa::openapi::Object {
    schema::trimmed_string(&format!(
        "{SEAT_NUMBER}{SPACE}*(?:-{SPACE}*{SEAT_NUMBER}{SPACE}*)?"
    ))
}

fn skipped_seats_schema() -> utoipa::openapi::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::Integer)
                .minimum(Some(0))
                .maximum(Some(u32::MAX)),
        )
        .build()
}

fn standard() -> SeatKind {
    SeatKind::Standard
}

/// A layout with unique section names, unique rows per section and unique seats per row,
/// within the size limits. Only [`Layout::parse`] makes one.
#[derive(Debug, Clone)]
pub struct Layout {
    sections: Vec<Section>,
}

#[derive(Debug, Clone)]
struct Section {
    name: String,
    sort_order: i32,
    rows: Vec<Row>,
}

#[derive(Debug, Clone)]
struct Row {
    label: String,
    seats: Vec<(i32, SeatKind)>,
}

impl Layout {
    pub fn parse(input: LayoutInput) -> Result<Self, FieldError> {
        if input.sections.is_empty() {
            return Err(FieldError::new(
                "sections",
                "a layout needs at least one section",
            ));
        }
        if input.sections.len() > MAX_SECTIONS {
            return Err(FieldError::new(
                "sections",
                format!("at most {MAX_SECTIONS} sections"),
            ));
        }
        let mut names = HashSet::new();
        let mut sections = Vec::with_capacity(input.sections.len());
        let mut total = 0_usize;
        for (position, section) in (0_i32..).zip(input.sections) {
            let name = required_text("sections.name", &section.name, 100)?;
            if !names.insert(name.to_lowercase()) {
                return Err(FieldError::new(
                    "sections",
                    format!("section {name:?} appears twice"),
                ));
            }
            let mut rows = match &section.generate {
                Some(generator) => generate(&name, generator)?,
                None => Vec::new(),
            };
            for row in section.rows {
                rows.push(listed_row(&name, row)?);
            }
            if rows.is_empty() {
                return Err(FieldError::new(
                    "sections",
                    format!("section {name:?} has no seats"),
                ));
            }
            let mut labels = HashSet::new();
            for row in &rows {
                if !labels.insert(row.label.as_str()) {
                    return Err(FieldError::new(
                        "sections",
                        format!(
                            "row {} of section {name:?} appears twice: seats overlap",
                            row.label
                        ),
                    ));
                }
                total += row.seats.len();
            }
            if total > MAX_SEATS {
                return Err(FieldError::new(
                    "sections",
                    format!("a venue has at most {MAX_SEATS} seats"),
                ));
            }
            sections.push(Section {
                name,
                sort_order: section.sort_order.unwrap_or(position),
                rows,
            });
        }
        if let Some(expected) = input.expected_capacity
            && usize::try_from(expected).ok() != Some(total)
        {
            return Err(FieldError::new(
                "expected_capacity",
                format!("the layout has {total} seats, not {expected}"),
            ));
        }
        Ok(Self { sections })
    }

    pub fn capacity(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|section| &section.rows)
            .map(|row| row.seats.len())
            .sum()
    }
}

fn generate(section: &str, generator: &RowsGenerator) -> Result<Vec<Row>, FieldError> {
    let labels = row_labels(&generator.rows)?;
    let numbers = seat_numbers("generate.seats", &generator.seats)?;
    let skip_rows: HashSet<String> = generator
        .skip_rows
        .iter()
        .map(|r| r.trim().to_ascii_uppercase())
        .collect();
    let skip_seats: HashSet<u32> = generator.skip_seats.iter().copied().collect();
    // Counted before any seat is built: a generator such as "1-999" by "1-9999" would
    // otherwise build ten million seats to refuse them.
    let kept_rows = labels.iter().filter(|l| !skip_rows.contains(*l)).count();
    let kept_seats = numbers.iter().filter(|n| !skip_seats.contains(*n)).count();
    if kept_rows.saturating_mul(kept_seats) > MAX_SEATS {
        return Err(FieldError::new(
            "sections",
            format!("a venue has at most {MAX_SEATS} seats"),
        ));
    }
    let mut kinds = BTreeMap::new();
    let mut overridden = 0_usize;
    for kind in &generator.kinds {
        let row = kind.row.trim().to_ascii_uppercase();
        if !labels.contains(&row) {
            return Err(FieldError::new(
                "generate.kinds",
                format!("row {row} is not generated in section {section:?}"),
            ));
        }
        let numbers = seat_numbers("generate.kinds.seats", &kind.seats)?;
        // Overrides are counted like seats: each range may name up to 9999 of them.
        overridden += numbers.len();
        if overridden > MAX_SEATS {
            return Err(FieldError::new(
                "generate.kinds",
                format!("at most {MAX_SEATS} seats of other kinds"),
            ));
        }
        for number in numbers {
            kinds.insert((row.clone(), number), kind.kind);
        }
    }
    let rows = labels
        .into_iter()
        .filter(|label| !skip_rows.contains(label))
        .map(|label| {
            let seats = numbers
                .iter()
                .filter(|number| !skip_seats.contains(number))
                .map(|&number| {
                    let kind = kinds
                        .get(&(label.clone(), number))
                        .copied()
                        .unwrap_or(SeatKind::Standard);
                    (i32::try_from(number).unwrap_or(i32::MAX), kind)
                })
                .collect();
            Row { label, seats }
        })
        .filter(|row: &Row| !row.seats.is_empty())
        .collect();
    Ok(rows)
}

fn listed_row(section: &str, row: RowInput) -> Result<Row, FieldError> {
    let label = row_label(&row.label)?;
    if row.seats.is_empty() {
        return Err(FieldError::new(
            "rows.seats",
            format!("row {label} of {section:?} has no seats"),
        ));
    }
    let mut numbers = HashSet::new();
    let mut seats = Vec::with_capacity(row.seats.len());
    for seat in row.seats {
        check_seat_number("rows.seats.number", seat.number)?;
        if !numbers.insert(seat.number) {
            return Err(FieldError::new(
                "rows.seats",
                format!(
                    "seat {label}-{} of section {section:?} appears twice: seats overlap",
                    seat.number
                ),
            ));
        }
        seats.push((i32::try_from(seat.number).unwrap_or(i32::MAX), seat.kind));
    }
    Ok(Row { label, seats })
}

fn row_label(value: &str) -> Result<String, FieldError> {
    // ASCII checked before upper-casing: "ß" would become "SS".
    let label = value.trim();
    if label.is_empty()
        || label.len() > MAX_ROW_LABEL
        || !label.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(FieldError::new(
            "rows.label",
            format!("row label {value:?} must be 1 to {MAX_ROW_LABEL} letters or digits"),
        ));
    }
    Ok(label.to_ascii_uppercase())
}

fn check_seat_number(field: &'static str, number: u32) -> Result<(), FieldError> {
    if (1..=MAX_SEAT_NUMBER).contains(&number) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("seat numbers run from 1 to {MAX_SEAT_NUMBER}"),
        ))
    }
}

/// "1-30" or "7", ascending.
fn seat_numbers(field: &'static str, value: &str) -> Result<Vec<u32>, FieldError> {
    let (first, last) = match value.split_once('-') {
        Some((first, last)) => (first.trim(), last.trim()),
        None => (value.trim(), value.trim()),
    };
    let parse = |text: &str| {
        text.parse::<u32>().map_err(|_| {
            FieldError::new(
                field,
                format!("{value:?} is not a seat number or range like 1-30"),
            )
        })
    };
    let (first, last) = (parse(first)?, parse(last)?);
    check_seat_number(field, first)?;
    check_seat_number(field, last)?;
    if first > last {
        return Err(FieldError::new(field, format!("{value:?} runs backwards")));
    }
    Ok((first..=last).collect())
}

/// "A-T", "AA-AF", "1-20" or a single label, in order.
fn row_labels(value: &str) -> Result<Vec<String>, FieldError> {
    let invalid = || {
        FieldError::new(
            "generate.rows",
            format!("{value:?} is not a row range like A-T or 1-20"),
        )
    };
    let out_of_order = || {
        FieldError::new(
            "generate.rows",
            format!("{value:?} runs backwards or spans 1000 rows or more"),
        )
    };
    let (first, last) = match value.split_once('-') {
        Some((first, last)) => (row_label(first)?, row_label(last)?),
        None => {
            let label = row_label(value)?;
            return Ok(vec![label]);
        }
    };
    let labels: Vec<String> =
        if let (Ok(first), Ok(last)) = (first.parse::<u32>(), last.parse::<u32>()) {
            if first > last || last - first >= 1_000 {
                return Err(out_of_order());
            }
            (first..=last).map(|n| n.to_string()).collect()
        } else {
            let (first, last) = (
                letters_rank(&first).ok_or_else(invalid)?,
                letters_rank(&last).ok_or_else(invalid)?,
            );
            if first > last || last - first >= 1_000 {
                return Err(out_of_order());
            }
            (first..=last).map(rank_letters).collect()
        };
    Ok(labels)
}

/// Spreadsheet-style letters to a number: A=1, Z=26, AA=27.
fn letters_rank(label: &str) -> Option<u32> {
    if label.len() > 3 || !label.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Some(
        label
            .bytes()
            .fold(0, |rank, b| rank * 26 + u32::from(b - b'A' + 1)),
    )
}

fn rank_letters(mut rank: u32) -> String {
    let mut letters = Vec::new();
    while rank > 0 {
        let digit = (rank - 1) % 26;
        letters.push(char::from(b'A' + u8::try_from(digit).unwrap_or(0)));
        rank = (rank - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// A section as the venue page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionSummary {
    pub id: Uuid,
    pub name: String,
    pub sort_order: i32,
    pub rows: i64,
    pub seats: i64,
}

/// The whole layout as a seat map draws it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LayoutView {
    pub venue_id: Uuid,
    pub capacity: i64,
    pub sections: Vec<SectionView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionView {
    pub id: Uuid,
    pub name: String,
    pub sort_order: i32,
    pub rows: Vec<RowView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RowView {
    pub label: String,
    pub seats: Vec<SeatView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SeatView {
    pub id: Uuid,
    pub number: i32,
    pub kind: SeatKind,
}

/// Replaces a venue's layout and its derived capacity. Refused once a showtime prices the
/// venue's sections.
#[tracing::instrument(skip(conn, layout), fields(seats = layout.capacity()))]
pub(super) async fn replace(
    conn: &mut PgConnection,
    venue_id: Uuid,
    layout: &Layout,
) -> Result<(), DomainError> {
    let in_use = sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM price_tiers pt JOIN seat_sections s ON s.id = pt.section_id
               WHERE s.venue_id = $1) AS "in_use!""#,
        venue_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if in_use {
        return Err(DomainError::conflict(
            "LAYOUT_IN_USE",
            "showtimes price this layout's sections; it can no longer be replaced",
        ));
    }
    sqlx::query!("DELETE FROM seats WHERE venue_id = $1", venue_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM seat_sections WHERE venue_id = $1", venue_id)
        .execute(&mut *conn)
        .await?;
    let (names, orders): (Vec<String>, Vec<i32>) = layout
        .sections
        .iter()
        .map(|s| (s.name.clone(), s.sort_order))
        .unzip();
    let section_ids = sqlx::query_scalar!(
        "INSERT INTO seat_sections (venue_id, name, sort_order)
         SELECT $1, name, sort_order FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS t(name, sort_order, n)
         ORDER BY n
         RETURNING id",
        venue_id,
        &names,
        &orders
    )
    .fetch_all(&mut *conn)
    .await?;
    let capacity = layout.capacity();
    let mut seat_sections = Vec::with_capacity(capacity);
    let mut labels = Vec::with_capacity(capacity);
    let mut ranks = Vec::with_capacity(capacity);
    let mut numbers = Vec::with_capacity(capacity);
    let mut kinds = Vec::with_capacity(capacity);
    for (section, section_id) in layout.sections.iter().zip(&section_ids) {
        for (rank, row) in (0_i32..).zip(&section.rows) {
            for &(number, kind) in &row.seats {
                seat_sections.push(*section_id);
                labels.push(row.label.clone());
                ranks.push(rank);
                numbers.push(number);
                kinds.push(kind);
            }
        }
    }
    sqlx::query!(
        "INSERT INTO seats (venue_id, section_id, row_label, row_rank, seat_number, kind)
         SELECT $1, section_id, row_label, row_rank, seat_number, kind
         FROM unnest($2::uuid[], $3::text[], $4::int[], $5::int[], $6::seat_kind[])
              AS t(section_id, row_label, row_rank, seat_number, kind)",
        venue_id,
        &seat_sections,
        &labels,
        &ranks,
        &numbers,
        &kinds as &[SeatKind]
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE venues SET capacity = $2, updated_at = now() WHERE id = $1",
        venue_id,
        i32::try_from(capacity).unwrap_or(i32::MAX)
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Section names, seat and row counts of a venue.
pub(super) async fn summaries(
    conn: &mut PgConnection,
    venue_id: Uuid,
) -> Result<Vec<SectionSummary>, sqlx::Error> {
    sqlx::query_as!(
        SectionSummary,
        r#"SELECT s.id, s.name, s.sort_order,
                  count(DISTINCT seat.row_label) AS "rows!", count(seat.id) AS "seats!"
           FROM seat_sections s LEFT JOIN seats seat ON seat.section_id = s.id
           WHERE s.venue_id = $1
           GROUP BY s.id ORDER BY s.sort_order, s.name"#,
        venue_id
    )
    .fetch_all(conn)
    .await
}

/// The seat map of a venue, or `None` if there is no such venue.
#[tracing::instrument(skip(db))]
pub async fn view(db: &sqlx::PgPool, venue_id: Uuid) -> Result<Option<LayoutView>, sqlx::Error> {
    let Some(capacity) = sqlx::query_scalar!("SELECT capacity FROM venues WHERE id = $1", venue_id)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let seats = sqlx::query!(
        r#"SELECT sec.id AS section_id, sec.name, sec.sort_order, s.id, s.row_label, s.seat_number,
                  s.kind AS "kind: SeatKind"
           FROM seat_sections sec JOIN seats s ON s.section_id = sec.id
           WHERE sec.venue_id = $1
           ORDER BY sec.sort_order, sec.name, s.row_rank, s.seat_number"#,
        venue_id
    )
    .fetch_all(db)
    .await?;
    let mut sections: Vec<SectionView> = Vec::new();
    for seat in seats {
        if sections.last().is_none_or(|s| s.id != seat.section_id) {
            sections.push(SectionView {
                id: seat.section_id,
                name: seat.name,
                sort_order: seat.sort_order,
                rows: Vec::new(),
            });
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        if section
            .rows
            .last()
            .is_none_or(|r| r.label != seat.row_label)
        {
            section.rows.push(RowView {
                label: seat.row_label,
                seats: Vec::new(),
            });
        }
        if let Some(row) = section.rows.last_mut() {
            row.seats.push(SeatView {
                id: seat.id,
                number: seat.seat_number,
                kind: seat.kind,
            });
        }
    }
    Ok(Some(LayoutView {
        venue_id,
        capacity: i64::from(capacity),
        sections,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(rows: &str, seats: &str, skip_seats: Vec<u32>) -> LayoutInput {
        LayoutInput {
            sections: vec![SectionInput {
                name: "Stalls".into(),
                sort_order: None,
                generate: Some(RowsGenerator {
                    rows: rows.into(),
                    seats: seats.into(),
                    skip_rows: vec!["I".into()],
                    skip_seats,
                    kinds: vec![],
                }),
                rows: vec![],
            }],
            expected_capacity: None,
        }
    }

    #[test]
    fn rows_a_to_t_seats_1_to_30_skipping_13_and_row_i() {
        let layout = Layout::parse(generated("A-T", "1-30", vec![13])).unwrap();
        assert_eq!(layout.capacity(), 19 * 29);
    }

    #[test]
    fn letter_ranges_continue_past_z() {
        assert_eq!(row_labels("Y-AB").unwrap(), ["Y", "Z", "AA", "AB"]);
        assert_eq!(row_labels("1-3").unwrap(), ["1", "2", "3"]);
        assert!(row_labels("T-A").is_err());
        assert!(row_labels("A-3").is_err());
    }

    #[test]
    fn overlapping_seats_are_refused() {
        let mut input = generated("A-B", "1-5", vec![]);
        input.sections[0].rows.push(RowInput {
            label: "b".into(),
            seats: vec![SeatInput {
                number: 9,
                kind: SeatKind::Aisle,
            }],
        });
        assert!(
            Layout::parse(input)
                .unwrap_err()
                .message
                .contains("overlap")
        );
        let twice = LayoutInput {
            sections: vec![SectionInput {
                name: "Box".into(),
                sort_order: None,
                generate: None,
                rows: vec![RowInput {
                    label: "X".into(),
                    seats: vec![
                        SeatInput {
                            number: 1,
                            kind: SeatKind::Standard,
                        },
                        SeatInput {
                            number: 1,
                            kind: SeatKind::Aisle,
                        },
                    ],
                }],
            }],
            expected_capacity: None,
        };
        assert!(
            Layout::parse(twice)
                .unwrap_err()
                .message
                .contains("overlap")
        );
    }

    #[test]
    fn declared_capacity_must_match() {
        let mut input = generated("A-B", "1-5", vec![]);
        input.expected_capacity = Some(10);
        assert!(Layout::parse(input.clone()).is_ok());
        input.expected_capacity = Some(11);
        assert!(Layout::parse(input).is_err());
    }

    /// Refused by counting, before ten million seats or overrides are built.
    #[test]
    fn oversized_generators_and_overrides_are_refused() {
        let error = Layout::parse(generated("1-999", "1-9999", vec![])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "sections: a venue has at most 100000 seats"
        );

        let mut input = generated("1-999", "1", vec![]);
        if let Some(generator) = input.sections[0].generate.as_mut() {
            generator.kinds = (1..=11)
                .map(|row| KindOverride {
                    row: row.to_string(),
                    seats: "1-9999".into(),
                    kind: SeatKind::Aisle,
                })
                .collect();
        }
        let error = Layout::parse(input).unwrap_err();
        assert_eq!(
            error.to_string(),
            "generate.kinds: at most 100000 seats of other kinds"
        );
    }
}
