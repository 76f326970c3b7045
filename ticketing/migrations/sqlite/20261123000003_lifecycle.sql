-- The case lifecycle (Circular 73/2024 Art. 24): review, owner, notice, payment, with an
-- append-only history; merged events; users, sessions, API tokens and the audit log.
ALTER TABLE cases ADD COLUMN updated_at TEXT;
-- The span of the merged events' times: the dedup window is measured from its ends.
ALTER TABLE cases ADD COLUMN last_occurred_at TEXT;
ALTER TABLE cases ADD COLUMN original_plate TEXT;
ALTER TABLE cases ADD COLUMN reject_reason TEXT;
ALTER TABLE cases ADD COLUMN reject_text TEXT;
ALTER TABLE cases ADD COLUMN merged_into INTEGER;
ALTER TABLE cases ADD COLUMN owner_json TEXT;
ALTER TABLE cases ADD COLUMN owner_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN owner_next_attempt_at TEXT;
ALTER TABLE cases ADD COLUMN owner_error TEXT;
ALTER TABLE cases ADD COLUMN notice_id INTEGER;
ALTER TABLE cases ADD COLUMN driver_json TEXT;
UPDATE cases SET updated_at = created_at, last_occurred_at = occurred_at;
CREATE INDEX cases_state ON cases (state);
CREATE INDEX cases_dedup ON cases (camera_id, violation, plate, last_occurred_at);

-- Every event that went into a case: a merged case keeps all its evidence.
CREATE TABLE case_events (
    event_id       TEXT PRIMARY KEY,
    case_id        INTEGER NOT NULL REFERENCES cases (id),
    occurred_at    TEXT NOT NULL,
    evidence_dir   TEXT NOT NULL,
    event_json     TEXT NOT NULL,
    received_at    TEXT NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id);
INSERT INTO case_events (event_id, case_id, occurred_at, evidence_dir, event_json, received_at)
    SELECT event_id, id, occurred_at, evidence_dir, event_json, created_at FROM cases;

CREATE TABLE case_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX case_history_case ON case_history (case_id);
INSERT INTO case_history (case_id, at, actor, action, from_state, to_state)
    SELECT id, created_at, 'intake', 'detected', NULL, state FROM cases;
CREATE TRIGGER case_history_no_update BEFORE UPDATE ON case_history
    BEGIN SELECT RAISE(ABORT, 'case history is append-only'); END;
CREATE TRIGGER case_history_no_delete BEFORE DELETE ON case_history
    BEGIN SELECT RAISE(ABORT, 'case history is append-only'); END;

CREATE TABLE notices (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    code           TEXT NOT NULL UNIQUE,
    plate          TEXT NOT NULL,
    owner_json     TEXT NOT NULL,
    fine_min_vnd   INTEGER NOT NULL,
    fine_max_vnd   INTEGER NOT NULL,
    points         INTEGER NOT NULL,
    -- The publication record exactly as published.
    record_json    TEXT NOT NULL,
    issued_at      TEXT NOT NULL,
    flag_due_at    TEXT NOT NULL,
    resolved_at    TEXT,
    payment_reference TEXT
);
CREATE INDEX notices_plate ON notices (plate);

-- Transactional outbox: written in the transaction that issues a notice, delivered after.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    topic            TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    payload          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    last_error       TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    disabled_at    TEXT
);
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE TABLE api_tokens (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    role     TEXT,
    action   TEXT NOT NULL,
    target   TEXT,
    detail   TEXT,
    client   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

-- The plate with OCR-confusable characters folded together (0/O/D, 1/I/L, 8/B, 5/S, 2/Z,
-- 6/G) and separators dropped: the key a forgiving plate search matches on.
ALTER TABLE cases ADD COLUMN plate_key TEXT;
UPDATE cases SET plate_key =
    REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(
        UPPER(plate), '-', ''), '.', ''), ' ', ''), 'O', '0'), 'D', '0'), 'I', '1'), 'L', '1'),
        'B', '8'), 'S', '5'), 'Z', '2'), 'G', '6')
    WHERE plate IS NOT NULL;
CREATE INDEX cases_plate_key ON cases (plate_key);
