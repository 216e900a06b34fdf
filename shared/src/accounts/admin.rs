//! What an admin does to accounts: give a user another role, disable an account or enable it
//! again. Each is audited in its own transaction, and takes effect at once on every instance
//! (the user's sessions are checked again from their next request).

use serde_json::json;
use uuid::Uuid;

use super::{
    Role,
    users::{self, User},
};
use crate::{
    audit::{self, Actor, AuditEntry},
    core::Core,
    error::DomainError,
};

/// Gives `user_id` the role `role`. An admin cannot change their own role (nor so lock
/// themselves out).
pub async fn change_role(
    core: &Core,
    admin: &Actor,
    user_id: Uuid,
    role: Role,
) -> Result<User, DomainError> {
    if user_id == admin.user_id {
        return Err(DomainError::conflict(
            "OWN_ROLE",
            "you cannot change your own role",
        ));
    }
    let mut tx = core.db.begin().await?;
    let (before, user) = users::set_role(&mut tx, user_id, role)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(json!({ "role": before })),
            after: Some(json!({ "role": user.role })),
            ..admin.entry("user.role_changed", "user", user_id)
        },
    )
    .await?;
    tx.commit().await?;
    core.account_changed(user_id).await;
    Ok(user)
}

/// Disables an account (every session ends at once, on every instance) or enables it again.
/// An admin cannot disable their own account.
pub async fn set_disabled(
    core: &Core,
    admin: &Actor,
    user_id: Uuid,
    disabled: bool,
) -> Result<(), DomainError> {
    if user_id == admin.user_id {
        return Err(DomainError::conflict(
            "OWN_ACCOUNT",
            "you cannot disable your own account",
        ));
    }
    let mut tx = core.db.begin().await?;
    let before = users::set_disabled(&mut tx, user_id, disabled)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let action = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(json!({ "disabled": before })),
            after: Some(json!({ "disabled": disabled })),
            ..admin.entry(action, "user", user_id)
        },
    )
    .await?;
    tx.commit().await?;
    core.account_changed(user_id).await;
    Ok(())
}
