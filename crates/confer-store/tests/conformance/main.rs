//! Store tests against real databases: the conformance suite, generated for each backend, and
//! the tests that only make sense for one backend.
//!
//! PostgreSQL tests use `CONFER_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each on its own schema; see
//! `confer_store::testing::postgres_url_or_skip` for what happens when it is unreachable.

mod cases;
mod group_commit;
mod postgres_only;
mod sqlite_only;

/// Generates one `#[tokio::test]` per case and backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = confer_store::testing::SqliteTest::new().await;
                    crate::cases::$case(db.store()).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = confer_store::testing::PgTest::new().await else { return };
                    crate::cases::$case(db.store()).await;
                    db.finish().await;
                }
            )*
        }
    };
}

conformance!(
    ping,
    create_and_get,
    update_with_expected_version,
    conflict_on_stale_version,
    conflict_on_create_existing,
    invalid_commits_are_refused,
    seqs_increase_across_conferences,
    read_events_paging,
    idempotency_is_atomic_with_commit,
    idempotency_expiry_and_purge,
    expired_idempotency_is_purged_a_page_at_a_time,
    users,
    list_conferences_by_index_key,
    wakeups_fire_after_commit,
    concurrent_same_version_exactly_one_wins,
    tailing_readers_see_every_seq_once_in_order,
    conference_events_in_version_order,
    pruned_history_keeps_a_base_for_later_events,
    ended_conferences_are_pruned_with_their_events,
    settings_first_writer_wins,
    cometd_sessions,
    cometd_concurrent_connects_keep_the_highest_cursor,
);
