use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::event::ViolationEvent;
use crate::fines::Fine;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("case database {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("case database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("case database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("case {event_id} holds an unreadable event: {message}")]
    Corrupt { event_id: String, message: String },
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New(i64),
    /// The event was recorded before; nothing changed.
    Duplicate(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    pub id: i64,
    pub event_id: String,
    pub camera_id: String,
    pub violation: String,
    pub plate: Option<String>,
    pub plate_confidence: Option<f64>,
    pub vehicle_class: String,
    pub occurred_at: DateTime<Utc>,
    pub evidence_dir: String,
    pub state: String,
    pub fine: Option<Fine>,
}

#[derive(Clone)]
pub struct CaseStore {
    pool: SqlitePool,
}

impl CaseStore {
    /// Open (creating if needed) the SQLite case database at `path` and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{location}"))
            .map_err(|source| StoreError::Open {
                location: location.clone(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { location, source })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Record an event as a case with its fine, once: a second call with the same event id
    /// changes nothing.
    pub async fn record(
        &self,
        event: &ViolationEvent,
        fine: Option<&Fine>,
    ) -> Result<Recorded, StoreError> {
        let json = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            event_id: event.event_id.to_string(),
            message: e.to_string(),
        })?;
        let inserted = sqlx::query(
            "INSERT INTO cases (event_id, camera_id, violation, plate, plate_confidence, vehicle_class,
                                occurred_at, evidence_dir, event_json, created_at,
                                fine_decree, fine_article, fine_min_vnd, fine_max_vnd, fine_points)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (event_id) DO NOTHING
             RETURNING id",
        )
        .bind(event.event_id.to_string())
        .bind(&event.camera_id)
        .bind(event.violation.as_str())
        .bind(event.plate.as_ref().map(|p| p.text.clone()))
        .bind(event.plate.as_ref().map(|p| p.confidence as f64))
        .bind(&event.vehicle_class)
        .bind(event.occurred_at.to_rfc3339())
        .bind(&event.evidence_dir)
        .bind(json)
        .bind(Utc::now().to_rfc3339())
        .bind(fine.map(|f| f.decree.clone()))
        .bind(fine.map(|f| f.article.clone()))
        .bind(fine.map(|f| f.min_vnd as i64))
        .bind(fine.map(|f| f.max_vnd as i64))
        .bind(fine.map(|f| f.points as i64))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(Recorded::New(row.try_get("id")?));
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM cases WHERE event_id = ?")
            .bind(event.event_id.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(Recorded::Duplicate(id))
    }

    /// All cases, oldest violation first.
    pub async fn list(&self) -> Result<Vec<CaseSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, camera_id, violation, plate, plate_confidence, vehicle_class,
                    occurred_at, evidence_dir, state,
                    fine_decree, fine_article, fine_min_vnd, fine_max_vnd, fine_points
             FROM cases ORDER BY occurred_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let event_id: String = row.try_get("event_id")?;
                let occurred: String = row.try_get("occurred_at")?;
                let occurred_at = DateTime::parse_from_rfc3339(&occurred)
                    .map_err(|e| StoreError::Corrupt {
                        event_id: event_id.clone(),
                        message: e.to_string(),
                    })?
                    .to_utc();
                let decree: Option<String> = row.try_get("fine_decree")?;
                let fine = match decree {
                    Some(decree) => Some(Fine {
                        decree,
                        article: row
                            .try_get::<Option<String>, _>("fine_article")?
                            .unwrap_or_default(),
                        min_vnd: row
                            .try_get::<Option<i64>, _>("fine_min_vnd")?
                            .unwrap_or_default() as u64,
                        max_vnd: row
                            .try_get::<Option<i64>, _>("fine_max_vnd")?
                            .unwrap_or_default() as u64,
                        points: row
                            .try_get::<Option<i64>, _>("fine_points")?
                            .unwrap_or_default() as u8,
                    }),
                    None => None,
                };
                Ok(CaseSummary {
                    fine,
                    id: row.try_get("id")?,
                    camera_id: row.try_get("camera_id")?,
                    violation: row.try_get("violation")?,
                    plate: row.try_get("plate")?,
                    plate_confidence: row.try_get("plate_confidence")?,
                    vehicle_class: row.try_get("vehicle_class")?,
                    occurred_at,
                    evidence_dir: row.try_get("evidence_dir")?,
                    state: row.try_get("state")?,
                    event_id,
                })
            })
            .collect()
    }

    /// The event a case was made from.
    pub async fn event(&self, case_id: i64) -> Result<Option<ViolationEvent>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT event_id, event_json FROM cases WHERE id = ?")
                .bind(case_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(event_id, json)| {
            ViolationEvent::from_json(&json)
                .map_err(|message| StoreError::Corrupt { event_id, message })
        })
        .transpose()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event;

    #[tokio::test]
    async fn the_same_event_recorded_three_times_is_one_case() {
        let dir = tempfile::tempdir().unwrap();
        let store = CaseStore::open_sqlite(&dir.path().join("cases.db"))
            .await
            .unwrap();
        let first = store.record(&sample_event(7), None).await.unwrap();
        let Recorded::New(id) = first else {
            panic!("first record was {first:?}")
        };
        assert_eq!(
            store.record(&sample_event(7), None).await.unwrap(),
            Recorded::Duplicate(id)
        );
        assert_eq!(
            store.record(&sample_event(7), None).await.unwrap(),
            Recorded::Duplicate(id)
        );
        assert!(matches!(
            store.record(&sample_event(8), None).await.unwrap(),
            Recorded::New(_)
        ));
        let cases = store.list().await.unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].plate.as_deref(), Some("98A-123.45"));
        assert_eq!(cases[0].state, "detected");
        assert_eq!(store.event(id).await.unwrap(), Some(sample_event(7)));
    }

    #[tokio::test]
    async fn reopening_keeps_cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.db");
        let store = CaseStore::open_sqlite(&path).await.unwrap();
        store.record(&sample_event(1), None).await.unwrap();
        store.close().await;
        let store = CaseStore::open_sqlite(&path).await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
    }
}
