-- The recording a sighting's video is served from: written only by this machine's own
-- pipeline (`vigil batch`, `vigil run` beside the database), which decoded that file;
-- never from what a client sends. `source` stays a description and is never opened:
-- rows recorded before this column get no recording, since their `source` may have come
-- from a client (the second review's critical finding).
ALTER TABLE sightings ADD COLUMN recording TEXT;
