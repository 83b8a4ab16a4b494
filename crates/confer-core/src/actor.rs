//! The authenticated user making a request, and what their roles allow.
//!
//! ## How roles combine
//! One user may speak both dialects, so an actor carries a *set* of roles:
//!
//! * GWS roles (`ROLE_AGENT`, `ROLE_SUPERVISOR`, `ROLE_ADMIN`) are [`Role::Agent`],
//!   [`Role::Supervisor`], [`Role::Admin`]. They are not cumulative by themselves
//!   (a supervisor who also handles calls holds both `Agent` and `Supervisor`),
//!   except that an admin may do whatever a supervisor may.
//! * Evo's role `User` is [`Role::User`]; it applies in each of the actor's
//!   [`accounts`](Actor::accounts). Following ServiceStack's convention that the
//!   `Admin` role passes every role check, an admin counts as an Evo user too,
//!   but still only in the accounts they belong to.
//! * GWS roles grant nothing on Evo sessions and Evo's `User` grants nothing on
//!   GWS calls and chats.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, DeviceId, PhoneNumber, UserId};

/// A role held by a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// GWS `ROLE_AGENT`: handles calls and chats.
    Agent,
    /// GWS `ROLE_SUPERVISOR`: may monitor agents' calls.
    Supervisor,
    /// GWS `ROLE_ADMIN`; also passes Evo role checks.
    Admin,
    /// Evo's `User` role, in the user's accounts.
    User,
}

/// The authenticated user making a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: UserId,
    pub username: String,
    pub roles: BTreeSet<Role>,
    /// The user's own line (GWS agents are parties of calls by this number).
    pub phone_number: Option<PhoneNumber>,
    pub email: Option<String>,
    pub device_id: Option<DeviceId>,
    /// Evo accounts the user belongs to.
    pub accounts: BTreeSet<AccountId>,
}

impl Actor {
    /// A user with no roles, line, email, device or account yet.
    pub fn new(user_id: impl Into<UserId>, username: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            username: username.into(),
            roles: BTreeSet::new(),
            phone_number: None,
            email: None,
            device_id: None,
            accounts: BTreeSet::new(),
        }
    }

    /// Adds a role.
    pub fn with_role(mut self, role: Role) -> Self {
        self.roles.insert(role);
        self
    }

    /// Sets the user's line.
    pub fn with_phone_number(mut self, phone_number: impl Into<PhoneNumber>) -> Self {
        self.phone_number = Some(phone_number.into());
        self
    }

    /// Sets the user's email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the user's device.
    pub fn with_device(mut self, device_id: impl Into<DeviceId>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }

    /// Adds an Evo account membership.
    pub fn with_account(mut self, account_id: impl Into<AccountId>) -> Self {
        self.accounts.insert(account_id.into());
        self
    }

    /// Whether the actor holds exactly this role.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// May handle GWS calls and chats as an agent.
    pub fn is_agent(&self) -> bool {
        self.has_role(Role::Agent)
    }

    /// May monitor calls (supervisors, and admins).
    pub fn is_supervisor(&self) -> bool {
        self.has_role(Role::Supervisor) || self.has_role(Role::Admin)
    }

    /// Passes Evo's `User` role check in `account`.
    pub fn is_evo_user_in(&self, account: &AccountId) -> bool {
        (self.has_role(Role::User) || self.has_role(Role::Admin)) && self.accounts.contains(account)
    }

    /// How the actor is named in Evo session logs: the email, else the username.
    pub fn display_identity(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_counts_as_supervisor_and_evo_user_only_in_own_accounts() {
        let admin = Actor::new("u1", "admin")
            .with_role(Role::Admin)
            .with_account("acme");
        assert!(admin.is_supervisor());
        assert!(!admin.is_agent());
        assert!(admin.is_evo_user_in(&AccountId::new("acme")));
        assert!(!admin.is_evo_user_in(&AccountId::new("other")));
    }

    #[test]
    fn gws_roles_grant_nothing_in_evo() {
        let agent = Actor::new("u2", "agent")
            .with_role(Role::Agent)
            .with_role(Role::Supervisor)
            .with_account("acme");
        assert!(!agent.is_evo_user_in(&AccountId::new("acme")));
        let evo = Actor::new("u3", "evo")
            .with_role(Role::User)
            .with_account("acme");
        assert!(!evo.is_agent());
        assert!(!evo.is_supervisor());
        assert!(evo.is_evo_user_in(&AccountId::new("acme")));
    }

    #[test]
    fn display_identity_prefers_email() {
        let user = Actor::new("u", "evo-user").with_email("agent@example.com");
        assert_eq!(user.display_identity(), "agent@example.com");
        assert_eq!(Actor::new("u", "evo-user").display_identity(), "evo-user");
    }
}
