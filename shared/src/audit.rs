//! The audit log: who did what to which resource, from where, with the before and after.
//! Append-only (the database refuses updates and deletes). Written in the same transaction as
//! the change it records, so neither exists without the other.

use std::net::IpAddr;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{accounts::Role, validation::FieldError};

pub struct AuditEntry<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: String,
    pub ip: Option<IpAddr>,
    pub request_id: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Who acted, from where, in which request: what the audit entries of a person's action share.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Uuid,
    pub role: Role,
    pub ip: Option<IpAddr>,
    pub request_id: String,
}

impl Actor {
    /// The entry of this actor's `action` on a resource; add the before and after with struct
    /// update syntax.
    pub fn entry<'a>(
        &'a self,
        action: &'a str,
        resource_type: &'a str,
        resource_id: impl ToString,
    ) -> AuditEntry<'a> {
        AuditEntry {
            actor_id: Some(self.user_id),
            actor_role: Some(self.role),
            action,
            resource_type,
            resource_id: resource_id.to_string(),
            ip: self.ip,
            request_id: Some(&self.request_id),
            before: None,
            after: None,
        }
    }
}

/// The longest reason, in characters.
pub const REASON_MAX: usize = 500;

/// Why a person did what the audit log records: required of admins' actions on bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        crate::validation::required_text("reason", text, REASON_MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub async fn record(conn: &mut PgConnection, entry: AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_log
             (actor_id, actor_role, action, resource_type, resource_id, ip, request_id, before, after)
         VALUES ($1, $2, $3, $4, $5, $6::text::inet, $7, $8, $9)",
        entry.actor_id,
        entry.actor_role as Option<Role>,
        entry.action,
        entry.resource_type,
        entry.resource_id,
        entry.ip.map(|ip| ip.to_string()),
        entry.request_id,
        entry.before,
        entry.after
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry per `(resource_id, after)` of `items`, each otherwise as `entry` says (a bulk
/// action, such as the refunds a showtime's cancellation asks for), in one statement.
pub async fn record_each(
    conn: &mut PgConnection,
    entry: &AuditEntry<'_>,
    items: &[(String, Value)],
) -> Result<(), sqlx::Error> {
    let (ids, afters): (Vec<String>, Vec<Value>) = items.iter().cloned().unzip();
    sqlx::query!(
        "INSERT INTO audit_log
             (actor_id, actor_role, action, resource_type, resource_id, ip, request_id, before, after)
         SELECT $1, $2, $3, $4, item.resource_id, $5::text::inet, $6, $7, item.after
         FROM unnest($8::text[], $9::jsonb[]) AS item (resource_id, after)",
        entry.actor_id,
        entry.actor_role as Option<Role>,
        entry.action,
        entry.resource_type,
        entry.ip.map(|ip| ip.to_string()),
        entry.request_id,
        entry.before,
        &ids,
        &afters
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A row of the audit log as admins read it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<Role>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Filters of the audit log; every one optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFilters {
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub actor_id: Option<Uuid>,
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub resource_type: Option<String>,
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub resource_id: Option<String>,
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Entries older than this id (the last id of the previous page).
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub before: Option<i64>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub limit: Option<u32>,
}

/// Audit entries newest first.
pub async fn search(
    db: &sqlx::PgPool,
    filters: &AuditFilters,
    limit: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    sqlx::query_as!(
        AuditRecord,
        r#"SELECT id, occurred_at, actor_id, actor_role AS "actor_role: Role", action, resource_type,
                  resource_id, host(ip) AS ip, request_id, before, after
           FROM audit_log
           WHERE ($1::uuid IS NULL OR actor_id = $1)
             AND ($2::text IS NULL OR action = $2)
             AND ($3::text IS NULL OR resource_type = $3)
             AND ($4::text IS NULL OR resource_id = $4)
             AND ($5::timestamptz IS NULL OR occurred_at >= $5)
             AND ($6::timestamptz IS NULL OR occurred_at < $6)
             AND ($7::bigint IS NULL OR id < $7)
           ORDER BY id DESC
           LIMIT $8"#,
        filters.actor_id,
        filters.action,
        filters.resource_type,
        filters.resource_id,
        filters.from,
        filters.to,
        filters.before,
        limit
    )
    .fetch_all(db)
    .await
}

/// Records an action that changed nothing in Postgres (a replayed job), on its own.
pub async fn record_one(db: &sqlx::PgPool, entry: AuditEntry<'_>) -> Result<(), sqlx::Error> {
    let mut conn = db.acquire().await?;
    record(&mut conn, entry).await
}
