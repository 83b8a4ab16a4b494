//! The user of `GET /api/v2/me` and their devices, built from an [`Actor`] into the spec's
//! `User` and `Device` (`spec/gws_common.toml`).

use confer_core::{Actor, Role};
pub use confer_model::gws_common::{Device, User};

use crate::{directory::device_of, render::Urls};

/// The signed-in user's `GET /api/v2/me` shape.
pub fn user_of(actor: &Actor, urls: &Urls) -> User {
    {
        let id = actor.user_id.to_string();
        User {
            uri: urls.user(&id),
            path: format!("/users/{id}"),
            id,
            user_name: actor.username.clone(),
            email_address: actor.email.clone(),
            roles: actor
                .roles
                .iter()
                .filter_map(|role| match role {
                    Role::Agent => Some("ROLE_AGENT".to_owned()),
                    Role::Supervisor => Some("ROLE_SUPERVISOR".to_owned()),
                    Role::Admin => Some("ROLE_ADMIN".to_owned()),
                    Role::User => None,
                })
                .collect(),
            phone_number: actor.phone_number.as_ref().map(ToString::to_string),
            devices: device_of_actor(actor, urls).into_iter().collect(),
        }
    }
}

/// The user's device, if they have a device or a line.
pub fn device_of_actor(actor: &Actor, urls: &Urls) -> Option<Device> {
    {
        let id = device_of(actor)?;
        let mut capabilities = Vec::new();
        if actor.is_agent() && actor.phone_number.is_some() {
            capabilities.push("Dial".to_owned());
        }
        if actor.is_supervisor() {
            capabilities.extend(
                ["ListenIn", "Coach", "BargeIn", "CancelSupervisorMonitoring"].map(str::to_owned),
            );
        }
        Some(Device {
            uri: urls.device(&id),
            path: format!("/devices/{id}"),
            id,
            device_state: "Active".to_owned(),
            phone_number: actor.phone_number.as_ref().map(ToString::to_string),
            capabilities,
        })
    }
}
