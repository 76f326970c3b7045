-- A case whose plate confidence was under the service's threshold when it came in: its
-- plate is a best guess that an officer must confirm or correct before approving, and it
-- merges with no other case by that plate.
ALTER TABLE cases ADD COLUMN plate_uncertain INTEGER NOT NULL DEFAULT 0;
