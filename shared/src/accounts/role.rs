//! The roles, and which role may do what another may.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "user_role", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    SuperAdmin,
    Editor,
    User,
}

impl Role {
    /// Whether this role may do what `required` may: a super admin may do everything an
    /// editor may, and both everything a user may.
    pub fn includes(self, required: Role) -> bool {
        self.rank() >= required.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Self::User => 0,
            Self::Editor => 1,
            Self::SuperAdmin => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Role::*;

    #[test]
    fn roles_are_ordered() {
        assert!(SuperAdmin.includes(Editor) && SuperAdmin.includes(User));
        assert!(Editor.includes(User) && !Editor.includes(SuperAdmin));
        assert!(!User.includes(Editor));
    }
}
