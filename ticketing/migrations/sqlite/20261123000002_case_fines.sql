-- The fine the schedule in force on the violation date sets, kept with the case so a later
-- amendment does not change what an existing case was assessed at.
ALTER TABLE cases ADD COLUMN fine_decree TEXT;
ALTER TABLE cases ADD COLUMN fine_article TEXT;
ALTER TABLE cases ADD COLUMN fine_min_vnd INTEGER;
ALTER TABLE cases ADD COLUMN fine_max_vnd INTEGER;
ALTER TABLE cases ADD COLUMN fine_points INTEGER;
