-- The web app's needs: where in its video a sighting was read (to open its footage),
-- a trigram index so a partial plate is found without reading every sighting, and the
-- last reported health of each camera.
ALTER TABLE sightings ADD COLUMN video_offset_ms BIGINT;

-- FTS5's trigram tokenizer answers LIKE '%…%' (three characters or more) from its index.
CREATE VIRTUAL TABLE sightings_trigram USING fts5(
    plate_key, content = 'sightings', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO sightings_trigram (sightings_trigram) VALUES ('rebuild');
CREATE TRIGGER sightings_trigram_insert AFTER INSERT ON sightings BEGIN
    INSERT INTO sightings_trigram (rowid, plate_key) VALUES (new.id, new.plate_key);
END;
CREATE TRIGGER sightings_trigram_delete AFTER DELETE ON sightings BEGIN
    INSERT INTO sightings_trigram (sightings_trigram, rowid, plate_key)
        VALUES ('delete', old.id, old.plate_key);
END;
CREATE TRIGGER sightings_trigram_update AFTER UPDATE OF plate_key ON sightings BEGIN
    INSERT INTO sightings_trigram (sightings_trigram, rowid, plate_key)
        VALUES ('delete', old.id, old.plate_key);
    INSERT INTO sightings_trigram (rowid, plate_key) VALUES (new.id, new.plate_key);
END;

CREATE TABLE camera_health (
    camera_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    location       TEXT NOT NULL,
    latitude       REAL,
    longitude      REAL,
    state          TEXT NOT NULL,
    reason         TEXT,
    fps_in         REAL NOT NULL,
    frames_in      BIGINT NOT NULL,
    frames_dropped BIGINT NOT NULL,
    reconnects     BIGINT NOT NULL,
    last_frame_at  TEXT,
    thumbnail      TEXT,
    reported_at    TEXT NOT NULL
);
