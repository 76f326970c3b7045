-- The web app's needs: where in its video a sighting was read (to open its footage),
-- a trigram index so a partial plate is found without reading every sighting, and the
-- last reported health of each camera.
ALTER TABLE sightings ADD COLUMN video_offset_ms BIGINT;

-- pg_trgm's GIN index answers LIKE '%…%' (three characters or more) from the index.
-- The extension is the database's, in whichever schema it was first made (public when
-- this makes it); the operator class is named with that schema, so a case store in
-- another schema finds it.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
DO $$
DECLARE ext_schema TEXT;
BEGIN
    SELECT n.nspname INTO ext_schema FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    EXECUTE format(
        'CREATE INDEX sightings_plate_key_trigram ON sightings USING gin (plate_key %I.gin_trgm_ops)',
        ext_schema);
END
$$;

CREATE TABLE camera_health (
    camera_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    location       TEXT NOT NULL,
    latitude       DOUBLE PRECISION,
    longitude      DOUBLE PRECISION,
    state          TEXT NOT NULL,
    reason         TEXT,
    fps_in         DOUBLE PRECISION NOT NULL,
    frames_in      BIGINT NOT NULL,
    frames_dropped BIGINT NOT NULL,
    reconnects     BIGINT NOT NULL,
    last_frame_at  TEXT,
    thumbnail      TEXT,
    reported_at    TEXT NOT NULL
);
