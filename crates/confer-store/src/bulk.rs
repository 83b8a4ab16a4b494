//! Bulk loading: many conferences (with the events that built them) and users in one
//! transaction, for filling a store before a server starts on it (benchmarks, migrations).
//!
//! [`Store::commit`](crate::Store::commit) is one durable transaction per conference, so a
//! million conferences would take minutes of fsyncs. A bulk load writes exactly the rows those
//! commits would have written (the conference row, its index keys, its events with fresh seqs
//! from the log head, the users) with multi-row statements, in one transaction per call.
//!
//! It only inserts: a conference id or a user id/username that already exists fails the whole
//! call, and nothing of it is stored. The log keeps its guarantees: the events get consecutive
//! seqs after the current head, in the order given, and the head moves in the same transaction.

use crate::records::{CommitOutcome, ConferenceRecord, NewEvent, UserRecord};

/// One conference to load, with the events that built it (each must name the conference).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkConference {
    pub conference: ConferenceRecord,
    pub events: Vec<NewEvent>,
}

/// What one bulk load stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkLoad {
    pub users: Vec<UserRecord>,
    pub conferences: Vec<BulkConference>,
}

/// What a bulk load stored: the number of users and conferences, and the seqs its events got
/// (an empty range `head + 1 ..= head` when there were none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOutcome {
    pub users: u64,
    pub conferences: u64,
    pub events: CommitOutcome,
}

/// The checks [`Store::commit`](crate::Store::commit) applies, for every conference of a load.
pub(crate) fn check_load(load: &BulkLoad) -> Result<(), crate::StoreError> {
    for user in &load.users {
        crate::codec::check_user(user)?;
    }
    for item in &load.conferences {
        let c = &item.conference;
        if c.id.is_empty() {
            return Err(crate::StoreError::Invalid(
                "conference id must not be empty".into(),
            ));
        }
        if let Some(e) = item.events.iter().find(|e| e.conference_id != c.id) {
            return Err(crate::StoreError::Invalid(format!(
                "event {:?} names conference {:?} but is loaded with {:?}",
                e.kind, e.conference_id, c.id
            )));
        }
    }
    Ok(())
}
