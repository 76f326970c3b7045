//! Sightings: every plate read kept (idempotently), and the forgiving search over them.

use crate::db::{CaseStore, StoreError, fold_plate, parse_ts, ts};
use sqlx::Row;
use uuid::Uuid;
use vigil_core::plate::PlateColour;

use crate::sightings::*;

impl CaseStore {
    /// Record a sighting with no recording to serve (a client's: its `source` is a
    /// description, never opened); false when it was recorded before.
    pub async fn record_sighting(&self, s: &Sighting) -> Result<bool, StoreError> {
        self.record_sighting_from(s, None).await
    }

    /// Record a sighting this machine's own pipeline read from `recording`, a file it
    /// decoded here: the one file the sighting's video route may serve. Never called with
    /// anything a client sent.
    pub async fn record_sighting_from(
        &self,
        s: &Sighting,
        recording: Option<&std::path::Path>,
    ) -> Result<bool, StoreError> {
        let recording = recording
            .map(|p| {
                p.to_str().map(str::to_owned).ok_or_else(|| {
                    StoreError::Invalid(format!("recording {}: not UTF-8", p.display()))
                })
            })
            .transpose()?;
        let done = sqlx::query(
            "INSERT INTO sightings (sighting_id, camera_id, plate, plate_key, confidence,
                 vehicle_class, plate_colour, seen_at, source, thumbnail, video_offset_ms,
                 recording)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (sighting_id) DO NOTHING",
        )
        .bind(s.sighting_id.to_string())
        .bind(&s.camera_id)
        .bind(&s.plate)
        .bind(fold_plate(&s.plate))
        .bind(s.confidence as f64)
        .bind(&s.vehicle_class)
        .bind(s.plate_colour.map(|c| c.as_str()))
        .bind(ts(s.seen_at))
        .bind(&s.source)
        .bind(s.thumbnail.clone())
        .bind(s.video_offset_ms.map(|v| v as i64))
        .bind(recording)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The recording sighting `id`'s video is served from, if this machine's pipeline
    /// recorded one (see [`CaseStore::record_sighting_from`]).
    pub async fn sighting_recording(
        &self,
        id: i64,
    ) -> Result<Option<std::path::PathBuf>, StoreError> {
        let row = sqlx::query("SELECT recording FROM sightings WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("recording"))
            .transpose()?
            .flatten()
            .map(std::path::PathBuf::from))
    }

    /// Record many sightings in one transaction (bulk loads, busy cameras); returns how
    /// many were new.
    pub async fn record_sightings(&self, all: &[Sighting]) -> Result<u64, StoreError> {
        const COLUMNS: usize = 11;
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in all.chunks(500) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p: Vec<String> = (1..=COLUMNS)
                        .map(|c| format!("${}", r * COLUMNS + c))
                        .collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO sightings (sighting_id, camera_id, plate, plate_key, confidence,
                     vehicle_class, plate_colour, seen_at, source, thumbnail, video_offset_ms)
                 VALUES {} ON CONFLICT (sighting_id) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(s.sighting_id.to_string())
                    .bind(s.camera_id.clone())
                    .bind(s.plate.clone())
                    .bind(fold_plate(&s.plate))
                    .bind(s.confidence as f64)
                    .bind(s.vehicle_class.clone())
                    .bind(s.plate_colour.map(|c| c.as_str()))
                    .bind(ts(s.seen_at))
                    .bind(s.source.clone())
                    .bind(s.thumbnail.clone())
                    .bind(s.video_offset_ms.map(|v| v as i64));
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Sightings whose plate matches the query, best match first (newest first among
    /// equals).
    pub async fn search_sightings(&self, q: &SightingQuery) -> Result<Vec<Found>, StoreError> {
        let key = q.checked_key().map_err(StoreError::Invalid)?;
        let patterns = candidate_patterns(&key);
        let n = patterns.len();
        // Each pattern asked of the trigram index on its own: SQLite's FTS5 table answers
        // one LIKE at a time from its index (an OR would read every row); PostgreSQL ORs
        // the GIN index scans.
        let matching = match self.backend() {
            crate::db::Backend::Sqlite => format!(
                "id IN ({})",
                (1..=n)
                    .map(|i| format!(
                        "SELECT rowid FROM sightings_trigram WHERE plate_key LIKE ${i}"
                    ))
                    .collect::<Vec<_>>()
                    .join(" UNION ")
            ),
            crate::db::Backend::Postgres => format!(
                "({})",
                (1..=n)
                    .map(|i| format!("plate_key LIKE ${i}"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
        };
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS}
             FROM sightings
             WHERE {matching}
               AND (${a} IS NULL OR camera_id = ${a})
               AND (${b} IS NULL OR vehicle_class = ${b})
               AND (${c} IS NULL OR seen_at >= ${c})
               AND (${d} IS NULL OR seen_at <= ${d})
             ORDER BY seen_at DESC, id DESC
             LIMIT ${e}",
            a = n + 1,
            b = n + 2,
            c = n + 3,
            d = n + 4,
            e = n + 5,
        );
        let mut query = sqlx::query(&sql);
        for p in patterns {
            query = query.bind(p);
        }
        let rows = query
            .bind(q.camera_id.clone())
            .bind(q.vehicle_class.clone())
            .bind(q.from.map(ts))
            .bind(q.to.map(ts))
            .bind(CANDIDATES)
            .fetch_all(&self.pool)
            .await?;
        let mut found = Vec::new();
        for row in &rows {
            let plate_key: String = row.try_get("plate_key")?;
            let score = similarity(&key, &plate_key);
            if score < MIN_SCORE {
                continue;
            }
            found.push(Found {
                id: row.try_get("id")?,
                score,
                sighting: sighting_from_row(row)?,
            });
        }
        // Stable: equal scores keep the newest-first order of the query.
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(q.limit.unwrap_or(100));
        Ok(found)
    }
}

impl CaseStore {
    /// How many sightings there are (from one source, if given).
    pub async fn count_sightings(&self, source: Option<&str>) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM sightings WHERE $1 IS NULL OR source = $1")
                .bind(source.map(str::to_string))
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        Ok(n.max(0) as u64)
    }

    /// After a bulk load, bring the sightings' indexes to the state the database's own
    /// upkeep (autovacuum, FTS5's automerge) reaches on its own over time: statistics for
    /// the planner, and the trigram index merged.
    pub async fn settle_sightings(&self) -> Result<(), StoreError> {
        let statements: &[&str] = match self.backend() {
            crate::db::Backend::Sqlite => &[
                "INSERT INTO sightings_trigram (sightings_trigram) VALUES ('optimize')",
                "ANALYZE",
            ],
            crate::db::Backend::Postgres => &["VACUUM ANALYZE sightings"],
        };
        for sql in statements {
            sqlx::query(sql).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// One sighting by its row id.
    pub async fn sighting(&self, id: i64) -> Result<Option<Sighting>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SIGHTING_COLUMNS} FROM sightings WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sighting_from_row).transpose()
    }
}

const SIGHTING_COLUMNS: &str = "id, sighting_id, camera_id, plate, plate_key, confidence,
    vehicle_class, plate_colour, seen_at, source, thumbnail, video_offset_ms";

fn sighting_from_row(row: &sqlx::any::AnyRow) -> Result<Sighting, StoreError> {
    let id: String = row.try_get("sighting_id")?;
    let corrupt = |message: String| StoreError::Corrupt {
        event_id: id.clone(),
        message,
    };
    let colour: Option<String> = row.try_get("plate_colour")?;
    Ok(Sighting {
        sighting_id: Uuid::parse_str(&id).map_err(|e| corrupt(e.to_string()))?,
        camera_id: row.try_get("camera_id")?,
        plate: row.try_get("plate")?,
        confidence: row.try_get::<f64, _>("confidence")? as f32,
        vehicle_class: row.try_get("vehicle_class")?,
        plate_colour: colour
            .map(|c| PlateColour::parse(&c).ok_or_else(|| corrupt(format!("plate colour `{c}`"))))
            .transpose()?,
        seen_at: parse_ts(&id, &row.try_get::<String, _>("seen_at")?)?,
        source: row.try_get("source")?,
        thumbnail: row.try_get("thumbnail")?,
        video_offset_ms: row
            .try_get::<Option<i64>, _>("video_offset_ms")?
            .map(|v| v.max(0) as u64),
    })
}
