//! Sightings: every plate the pipeline reads, violation or not, and the search that
//! forgives OCR's mistakes.
//!
//! A search folds the query and the plates alike ([`fold_plate`]: 0/O/D, 1/I/L, 8/B, 5/S,
//! 2/Z, 6/G are one character each), so `98A-l23.4S` finds `98A-123.45` exactly. Beyond
//! look-alikes, one character read wrong, missing or extra anywhere is forgiven: candidates
//! are fetched by the query's one-edit variants as LIKE patterns answered by a trigram
//! index ([`candidate_patterns`]), then ranked by edit distance.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::store::{CaseStore, StoreError, fold_plate, parse_ts, ts};
use vigil_core::plate::PlateColour;

pub use vigil_core::Sighting;

/// A sighting as API clients see it: where its picture lies on the server stays there; a
/// client is told only whether there is one (`GET /api/sightings/{id}/thumbnail`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Sighting)]
pub struct SightingView {
    /// Derived from the camera, the source and the moment: recording twice adds nothing.
    pub sighting_id: Uuid,
    pub camera_id: String,
    pub plate: String,
    pub confidence: f32,
    pub vehicle_class: String,
    #[schema(value_type = Option<crate::http::schema::PlateColourSchema>)]
    pub plate_colour: Option<PlateColour>,
    pub seen_at: DateTime<Utc>,
    /// The video it was read from (file path, or stream URL without credentials).
    pub source: String,
    pub has_thumbnail: bool,
    /// Where in the source it was read, when the source is a recording.
    pub video_offset_ms: Option<u64>,
}

impl From<&Sighting> for SightingView {
    fn from(s: &Sighting) -> Self {
        Self {
            sighting_id: s.sighting_id,
            camera_id: s.camera_id.clone(),
            plate: s.plate.clone(),
            confidence: s.confidence,
            vehicle_class: s.vehicle_class.clone(),
            plate_colour: s.plate_colour,
            seen_at: s.seen_at,
            source: s.source.clone(),
            has_thumbnail: s.thumbnail.is_some(),
            video_offset_ms: s.video_offset_ms,
        }
    }
}

fn as_view<S: serde::Serializer>(s: &Sighting, ser: S) -> Result<S::Ok, S::Error> {
    SightingView::from(s).serialize(ser)
}

/// What to search for; every field but `plate` narrows.
#[derive(Debug, Clone, Default)]
pub struct SightingQuery {
    /// Whole or partial plate, as typed.
    pub plate: String,
    pub camera_id: Option<String>,
    pub vehicle_class: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Most results returned (default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Found {
    pub id: i64,
    /// 1.0 for the whole plate (look-alikes aside); less for a part of it, or for a
    /// plate one character away.
    pub score: f32,
    #[serde(serialize_with = "as_view")]
    #[schema(value_type = SightingView)]
    pub sighting: Sighting,
}

/// Fewest folded characters a search needs: fewer would match half the province.
pub const MIN_QUERY: usize = 3;
/// Candidates fetched before ranking, newest first.
const CANDIDATES: i64 = 5000;
/// Least score returned.
const MIN_SCORE: f32 = 0.5;
/// A character read wrong is forgiven only in queries this long: in a part of a plate,
/// one edit away matches too much of the province to be useful.
const MIN_FUZZY: usize = 6;

/// How well a folded query matches a folded plate: 1.0 equal; a part of the plate scores
/// by how much of it the query covers; one edit away (in the whole, or in the part)
/// costs a share of the query's length.
pub fn similarity(query: &str, plate: &str) -> f32 {
    let (q, p): (Vec<char>, Vec<char>) = (query.chars().collect(), plate.chars().collect());
    if q.is_empty() || p.is_empty() {
        return 0.0;
    }
    let coverage = |len: usize| (len.min(p.len()) as f32 / p.len() as f32).min(1.0);
    if plate.contains(query) {
        return 0.5 + 0.5 * coverage(q.len());
    }
    let mut best = usize::MAX;
    if q.len() + 1 >= p.len() {
        // A whole plate typed: compared with the whole plate.
        best = strsim::levenshtein(query, plate);
    } else {
        // A part: the closest window of the plate (windows one shorter and longer than
        // the query let a missing or extra character count as one edit).
        for len in q.len().saturating_sub(1).max(1)..=q.len() + 1 {
            for start in 0..=p.len() - len {
                let window: String = p[start..start + len].iter().collect();
                best = best.min(strsim::levenshtein(query, &window));
            }
        }
    }
    if best == usize::MAX || best > 1 || q.len() < MIN_FUZZY {
        return 0.0;
    }
    let penalty = 1.0 - best as f32 / q.len() as f32;
    (0.5 + 0.5 * coverage(q.len())) * penalty * 0.9
}

/// The LIKE patterns that fetch every plate holding the folded query, or (in queries of
/// `MIN_FUZZY` or more characters) the query with one character read wrong, missing or
/// extra: the query itself; with each character a wildcard (`_`); with each character
/// dropped; with a wildcard slipped between each two. Every pattern keeps a run of three
/// or more characters, so the trigram indexes answer it, and each is narrow: folded
/// plates are mostly digits, where half a plate would match thousands.
pub fn candidate_patterns(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().filter(|c| c.is_alphanumeric()).collect();
    let text = |cs: &[char]| -> String { cs.iter().collect() };
    let mut patterns = vec![text(&chars)];
    if chars.len() >= MIN_FUZZY {
        for i in 0..chars.len() {
            let mut wrong = chars.clone();
            wrong[i] = '_';
            patterns.push(text(&wrong));
            let mut missing = chars.clone();
            missing.remove(i);
            patterns.push(text(&missing));
            if i > 0 {
                let mut extra = chars.clone();
                extra.insert(i, '_');
                patterns.push(text(&extra));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    patterns
        .into_iter()
        .map(|p| format!("%{}%", p.trim_matches('_')))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

impl CaseStore {
    /// Record a sighting; false when it was recorded before.
    pub async fn record_sighting(&self, s: &Sighting) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sightings (sighting_id, camera_id, plate, plate_key, confidence,
                 vehicle_class, plate_colour, seen_at, source, thumbnail, video_offset_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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
        let key = fold_plate(&q.plate);
        if key.chars().count() < MIN_QUERY {
            return Err(StoreError::Invalid(format!(
                "plate search `{}`: type at least {MIN_QUERY} letters or digits",
                q.plate
            )));
        }
        let patterns = candidate_patterns(&key);
        let n = patterns.len();
        // Each pattern asked of the trigram index on its own: SQLite's FTS5 table answers
        // one LIKE at a time from its index (an OR would read every row); PostgreSQL ORs
        // the GIN index scans.
        let matching = match self.backend() {
            crate::store::Backend::Sqlite => format!(
                "id IN ({})",
                (1..=n)
                    .map(|i| format!(
                        "SELECT rowid FROM sightings_trigram WHERE plate_key LIKE ${i}"
                    ))
                    .collect::<Vec<_>>()
                    .join(" UNION ")
            ),
            crate::store::Backend::Postgres => format!(
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

const SIGHTING_COLUMNS: &str = "id, sighting_id, camera_id, plate, plate_key, confidence,
    vehicle_class, plate_colour, seen_at, source, thumbnail, video_offset_ms";

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
            crate::store::Backend::Sqlite => &[
                "INSERT INTO sightings_trigram (sightings_trigram) VALUES ('optimize')",
                "ANALYZE",
            ],
            crate::store::Backend::Postgres => &["VACUUM ANALYZE sightings"],
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
