use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

use crate::event::ViolationEvent;
use crate::fines::Fine;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("case database {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("case database {0}: only sqlite:// and postgres:// URLs are supported")]
    Scheme(String),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The cases, on SQLite (the embedded default) or PostgreSQL (a province's deployment).
/// Queries are written once, with `$n` placeholders, which both accept.
#[derive(Clone)]
pub struct CaseStore {
    pool: AnyPool,
    backend: Backend,
}

impl CaseStore {
    /// Open (creating if needed) the SQLite case database at `path` and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Open a `sqlite://` or `postgres://` database and migrate it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Scheme(redact(url)));
        };
        let options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 10 });
        let options = if backend == Backend::Sqlite {
            // Writers from several processes (batch jobs, the server) wait instead of failing.
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 10000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|source| StoreError::Open {
                location: redact(url),
                source,
            })?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
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
        let id: i64 = sqlx::query_scalar("SELECT id FROM cases WHERE event_id = $1")
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
            sqlx::query_as("SELECT event_id, event_json FROM cases WHERE id = $1")
                .bind(case_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(event_id, json)| {
            ViolationEvent::from_json(&json)
                .map_err(|message| StoreError::Corrupt { event_id, message })
        })
        .transpose()
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL fit for an error message: no password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event;

    #[tokio::test]
    async fn the_same_event_recorded_three_times_is_one_case() {
        for (backend, store, _dir) in crate::testing::both().await {
            eprintln!("backend {backend}");
            the_same_event_three_times(store).await;
        }
    }

    async fn the_same_event_three_times(store: CaseStore) {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_thousand_events_from_ten_concurrent_writers_make_exactly_the_expected_cases() {
        for (backend, store, _dir) in crate::testing::both().await {
            // Writer w sends events w*100 .. w*100+99, and every writer also resends the
            // first ten events of the writer before it: 1,000 distinct events, 1,100 sends.
            let mut writers = Vec::new();
            for w in 0..10u128 {
                let store = store.clone();
                writers.push(tokio::spawn(async move {
                    let mut outcomes = (0, 0);
                    let resend = ((w + 9) % 10) * 100;
                    for n in (w * 100..w * 100 + 100).chain(resend..resend + 10) {
                        match store.record(&sample_event(n + 1), None).await.unwrap() {
                            Recorded::New(_) => outcomes.0 += 1,
                            Recorded::Duplicate(_) => outcomes.1 += 1,
                        }
                    }
                    outcomes
                }));
            }
            let (mut new, mut dup) = (0, 0);
            for w in writers {
                let (n, d) = w.await.unwrap();
                new += n;
                dup += d;
            }
            assert_eq!((new, dup), (1000, 100), "{backend}");
            assert_eq!(store.count().await.unwrap(), 1000, "{backend}");
        }
    }

    #[test]
    fn passwords_stay_out_of_error_messages() {
        assert_eq!(
            redact("postgres://vigil:s3cret@db:5432/vigil"),
            "postgres://vigil:***@db:5432/vigil"
        );
        assert_eq!(redact("sqlite://data/vigil.db"), "sqlite://data/vigil.db");
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
