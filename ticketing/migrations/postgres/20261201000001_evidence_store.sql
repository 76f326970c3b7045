-- Evidence is the service's own: a case's package is the folder named by its event id in
-- the service's evidence store, never a path a client sent. The `evidence_dir` columns
-- now hold that name.
UPDATE cases SET evidence_dir = event_id;
UPDATE case_events SET evidence_dir = event_id;

-- The public keys whose signatures the service accepts on evidence packages: the data
-- folder's own key, pinned the first time it is used with this database, and the keys of
-- workers on other machines, trusted by an administrator. A key is never replaced: a
-- changed data-folder key is reported, not trusted.
CREATE TABLE signing_keys (
    public_key   TEXT PRIMARY KEY,
    label        TEXT NOT NULL,
    pinned_at    TEXT NOT NULL,
    revoked_at   TEXT
);
