-- Every plate read, violation or not: what investigators search. sighting_id (derived
-- from camera, source and moment) makes recording idempotent; plate_key is the plate
-- folded as fold_plate() does, so OCR look-alikes meet.
CREATE TABLE sightings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sighting_id    TEXT NOT NULL UNIQUE,
    camera_id      TEXT NOT NULL,
    plate          TEXT NOT NULL,
    plate_key      TEXT NOT NULL,
    confidence     REAL NOT NULL,
    vehicle_class  TEXT NOT NULL,
    plate_colour   TEXT,
    seen_at        TEXT NOT NULL,
    source         TEXT NOT NULL,
    thumbnail      TEXT
);
CREATE INDEX sightings_plate_key ON sightings (plate_key);
CREATE INDEX sightings_seen_at ON sightings (seen_at);
CREATE INDEX sightings_camera_seen_at ON sightings (camera_id, seen_at);
