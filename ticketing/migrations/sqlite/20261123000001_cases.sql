-- One row per violation event; event_id makes intake idempotent.
CREATE TABLE cases (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id                 TEXT NOT NULL UNIQUE,
    camera_id                TEXT NOT NULL,
    violation                TEXT NOT NULL,
    plate                    TEXT,
    plate_confidence         REAL,
    vehicle_class            TEXT NOT NULL,
    occurred_at              TEXT NOT NULL,
    evidence_dir             TEXT NOT NULL,
    state                    TEXT NOT NULL DEFAULT 'detected',
    event_json               TEXT NOT NULL,
    created_at               TEXT NOT NULL
);
CREATE INDEX cases_occurred_at ON cases (occurred_at);
CREATE INDEX cases_plate ON cases (plate);
