//! Shared fixtures: the demo world at the time of the seeds' removals.

#![allow(dead_code)]

use confer_core::demo::{self, DemoWorld};
use confer_core::{Actor, Command, Conference, DomainError, Event, Timestamp, UserId};

/// 2014-02-13T08:20:59.000-08:00, the timestamp of the seed chat removal.
pub const NOW: Timestamp = Timestamp::from_millis(1_392_308_459_000);

pub fn world() -> DemoWorld {
    demo::demo_world(NOW).expect("the demo world builds through the rules")
}

pub fn actor(username: &str) -> Actor {
    demo::demo_actor(username).expect("a demo user")
}

pub fn user_id(username: &str) -> UserId {
    actor(username).user_id
}

pub fn conference<'a>(world: &'a DemoWorld, id: &str) -> &'a Conference {
    world.conference(id).expect("a demo conference")
}

/// Runs a command at NOW.
pub fn run(
    world: &mut DemoWorld,
    username: &str,
    command: Command,
) -> Result<Vec<Event>, DomainError> {
    world.execute(&actor(username), command, NOW)
}

/// Runs a command at NOW that must be accepted.
pub fn run_ok(world: &mut DemoWorld, username: &str, command: Command) -> Vec<Event> {
    match run(world, username, command) {
        Ok(events) => events,
        Err(error) => panic!("{username}'s command was refused: {error}"),
    }
}

/// The error of a command at NOW that must be refused.
pub fn run_err(world: &mut DemoWorld, username: &str, command: Command) -> DomainError {
    let before = world.clone();
    match run(world, username, command) {
        Ok(events) => panic!("{username}'s command was accepted: {events:?}"),
        Err(error) => {
            assert_eq!(*world, before, "a refused command changes nothing");
            error
        }
    }
}

/// The state after the first `count` events of a conference (for "what did the
/// view look like right after this event").
pub fn state_after(world: &DemoWorld, id: &str, count: usize) -> Conference {
    let events = world.events_of(id);
    confer_core::replay(events.into_iter().take(count))
        .expect("the log replays")
        .expect("the conference exists")
}
