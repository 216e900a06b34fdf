//! The audit log: who did what to which resource, from where, with the before and after.
//! Append-only (the database refuses updates and deletes). Written in the same transaction as
//! the change it records, so neither exists without the other.

use std::net::IpAddr;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::accounts::Role;

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
