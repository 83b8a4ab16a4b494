//! Durable storage for Confer: conferences, the global event log, idempotency records and
//! users, behind one object-safe trait ([`Store`]) with two backends:
//!
//! * [`SqliteStore`]: the embedded default, one file in a data directory;
//! * [`PgStore`]: PostgreSQL, which several server nodes can share.
//!
//! The store does not know the domain types: conference snapshots, event payloads and
//! idempotent responses are JSON values the server produces.
//!
//! # The event log
//! Every notification of the product is derived from the log. Its seqs are global, strictly
//! increasing and gap-free, and **commit order equals seq order**: when a reader has seen seq
//! `n`, no event with a seq below `n` can appear later. So a tailer needs only a cursor:
//! `read_events(cursor, limit)`, advance, repeat; [`Store::subscribe_wakeups`] says when to
//! look again, and a missed wake-up loses nothing. How each backend keeps the promise is
//! described in [`sqlite`] and [`postgres`] and in the crate's README.
//!
//! # Retention
//! The log does not grow for ever: [`Store::prune_history`] drops the events of conferences
//! that have not changed for a while (keeping each one's state at that point as the base its
//! later events apply to), and [`Store::prune_ended`] drops ended conferences with their events.
//! Pruning removes whole conferences' histories older than the window, so it leaves holes only
//! in that old part of the log: a reader that finds a seq missing after its cursor is reading
//! from further back than the log keeps, and that is how a resume from a pruned position is
//! told (the log has no other gaps).

pub mod bulk;
mod codec;
pub mod error;
mod migrations;
pub mod postgres;
pub mod records;
pub mod sqlite;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use bulk::{BulkConference, BulkLoad, BulkOutcome};
pub use error::StoreError;
pub use postgres::{PgStore, PgStoreOptions};
pub use records::{
    CometdConnect, CometdSessionRecord, CometdSubscription, Commit, CommitOutcome,
    ConferenceHistory, ConferenceRecord, GroupCommitStats, HistoryBase, IdempotencyRecord,
    NewEvent, PruneProgress, StoredEvent, UserRecord,
};
pub use sqlite::SqliteStore;
pub use store::{CometdSessionChange, Store, StoreResult};
