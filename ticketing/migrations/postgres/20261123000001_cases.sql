-- One row per violation event; event_id makes intake idempotent.
-- Times are RFC 3339 UTC text, as on SQLite, so both backends sort and return them alike.
CREATE TABLE cases (
    id                       BIGSERIAL PRIMARY KEY,
    event_id                 TEXT NOT NULL UNIQUE,
    camera_id                TEXT NOT NULL,
    violation                TEXT NOT NULL,
    plate                    TEXT,
    plate_confidence         DOUBLE PRECISION,
    vehicle_class            TEXT NOT NULL,
    occurred_at              TEXT NOT NULL,
    evidence_dir             TEXT NOT NULL,
    state                    TEXT NOT NULL DEFAULT 'detected',
    event_json               TEXT NOT NULL,
    created_at               TEXT NOT NULL
);
CREATE INDEX cases_occurred_at ON cases (occurred_at);
CREATE INDEX cases_plate ON cases (plate);
