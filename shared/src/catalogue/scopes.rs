//! Which cached answers a catalogue write makes stale, as [`crate::cache`] scopes.
//!
//! Pages are cached per entity (`show:<id>`, `venue:<id>`, `event:<id>`, `showtime:<id>`), and
//! listings as two groups. A write names the entities it changed; [`affected`] adds every page
//! that shows them (a venue's name appears on the pages of its shows, events and showtimes).

use std::collections::BTreeSet;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::cache::{Entry, Kind};

/// Every page of show and event search results: any catalogue write can change them.
pub const SHOW_LISTINGS: &str = "listings:shows";
/// Every page of venue search results.
pub const VENUE_LISTINGS: &str = "listings:venues";
pub const CATEGORIES: &str = "categories";

pub fn venue(id: Uuid) -> String {
    format!("venue:{id}")
}

pub fn show(id: Uuid) -> String {
    format!("show:{id}")
}

pub fn event(id: Uuid) -> String {
    format!("event:{id}")
}

pub fn showtime(id: Uuid) -> String {
    format!("showtime:{id}")
}

/// A page of one entity, cached under the entity's own scope.
pub fn details(scope: String, page: &str) -> Entry {
    Entry {
        kind: Kind::Details,
        key: format!("{scope}:{page}"),
        scope,
    }
}

/// What a write touched, from which the stale pages follow.
#[derive(Debug, Clone, Copy)]
pub enum Changed {
    Venue(Uuid),
    Show(Uuid),
    Event(Uuid),
    Showtime(Uuid),
}

/// The scopes made stale by a change: the entity's own, those of every page that shows it,
/// and the listings it can appear in. Run inside the writing transaction, before a delete.
pub async fn affected(
    conn: &mut PgConnection,
    changed: Changed,
) -> Result<Vec<String>, sqlx::Error> {
    let (venue_id, show_id, event_id, showtime_id) = match changed {
        Changed::Venue(id) => (Some(id), None, None, None),
        Changed::Show(id) => (None, Some(id), None, None),
        Changed::Event(id) => (None, None, Some(id), None),
        Changed::Showtime(id) => (None, None, None, Some(id)),
    };
    let rows = sqlx::query!(
        r#"SELECT e.show_id, e.id AS event_id, st.id AS "showtime_id?"
           FROM events e LEFT JOIN showtimes st ON st.event_id = e.id
           WHERE e.venue_id = $1 OR e.show_id = $2 OR e.id = $3 OR st.id = $4"#,
        venue_id,
        show_id,
        event_id,
        showtime_id
    )
    .fetch_all(conn)
    .await?;
    let mut scopes = BTreeSet::from([SHOW_LISTINGS.to_owned()]);
    match changed {
        Changed::Venue(id) => {
            scopes.insert(venue(id));
            scopes.insert(VENUE_LISTINGS.to_owned());
        }
        Changed::Show(id) => {
            scopes.insert(show(id));
        }
        Changed::Event(id) => {
            scopes.insert(event(id));
        }
        Changed::Showtime(id) => {
            scopes.insert(showtime(id));
        }
    }
    for row in rows {
        scopes.insert(show(row.show_id));
        scopes.insert(event(row.event_id));
        if let Some(id) = row.showtime_id {
            scopes.insert(showtime(id));
        }
    }
    Ok(scopes.into_iter().collect())
}
