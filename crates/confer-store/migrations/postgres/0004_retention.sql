-- Retention (Store::prune_history): once a conference's early events are pruned, its log
-- starts after `version`. Its state at that version is the conference row's `state` while the
-- row is still at that version, and `base_state` after that: the first commit after a prune
-- copies the state it replaces there. A table of its own, so that a prune writes a small row
-- instead of rewriting the conference's snapshot.
CREATE TABLE conference_log_starts (
    conference_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES conferences (id) ON DELETE CASCADE,
    version       BIGINT NOT NULL CHECK (version > 0),
    base_state    JSONB
);

-- Ended conferences by age, for Store::prune_ended; live ones (nearly all writes) skip it.
CREATE INDEX conferences_ended ON conferences (updated_at_ms) WHERE NOT live;
