//! The case database, on SQLite (the embedded default) or PostgreSQL (a province's
//! deployment), one module per family of tables. [`CaseStore`] is the one handle; queries
//! are written once with `$n` placeholders, which both accept, and each dialect has its
//! migration folder (`migrations/{sqlite,postgres}`).

mod audit;
mod cameras;
mod cases;
mod deadlines;
mod keys;
mod notices;
mod owners;
mod payments;
mod probe;
mod review;
mod sightings;
mod users;

pub use payments::{HeldPayment, MAX_CLAIMS_PER_NOTICE, PaymentOutcome};

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

use crate::lifecycle::CaseState;
pub(crate) use cases::fine_from_row;
pub use cases::{
    CaseDetail, CaseEventRef, CaseFilter, CaseSummary, DEFAULT_PLATE_CERTAIN_AT, HistoryEntry,
};
pub use keys::{DATA_FOLDER_KEY, KeyPin, SigningKey};
pub use vigil_core::Recorded;

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
    #[error("case {0} does not exist")]
    CaseNotFound(i64),
    #[error("case {case_id} is {state}; it cannot be {action}")]
    WrongState {
        case_id: i64,
        state: String,
        action: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    /// A part of the store other than the database (the evidence folder) failed.
    #[error("{0}")]
    Unavailable(String),
    #[error("no notice {0} for that plate")]
    NoticeNotFound(String),
    /// What was asked contradicts what is recorded (a second payment of a paid notice).
    #[error("{0}")]
    Conflict(String),
    #[error("case database {location} cannot be reached: {reason}")]
    Unreachable { location: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Times are stored as RFC 3339 UTC text with a fixed number of digits, so both backends
/// compare and sort them as strings alike.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

pub(crate) fn parse_ts(what: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| StoreError::Corrupt {
            event_id: what.to_string(),
            message: format!("bad time `{s}`: {e}"),
        })
}

pub use vigil_core::look_alike::fold_plate;

/// `'a', 'b'` for `state IN (…)`: the names are ours, never input, so they can be inlined.
pub(crate) fn in_list(states: &[CaseState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cases, on SQLite (the embedded default) or PostgreSQL (a province's deployment).
/// Queries are written once, with `$n` placeholders, which both accept.
#[derive(Clone)]
pub struct CaseStore {
    pub(crate) pool: AnyPool,
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
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        probe::first_connection(url, backend).await?;
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
        if backend == Backend::Sqlite {
            probe::owner_only(url)?;
        }
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool itself, for maintenance and for the tests that check the
    /// database's own guards (history and audit rows that refuse to change).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction. SQLite takes its write lock at the start, so two writers that
    /// read before they write queue up instead of failing with "database is locked".
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// On PostgreSQL, serialise the transactions that decide about one key (a plate's
    /// dedup, a case's transition); SQLite's write lock already does.
    pub(crate) async fn lock_key(
        &self,
        tx: &mut Transaction<'static, Any>,
        key: &str,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(key.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Move a case from one of `from` to `to`, with a history row, inside `tx`. Returns
    /// the state it was in. `set` is an extra `col = $n, ...` list, its values in `binds`
    /// from `$3` on.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn transition(
        &self,
        tx: &mut Transaction<'static, Any>,
        case_id: i64,
        from: &[CaseState],
        to: CaseState,
        actor: &str,
        action: &'static str,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<CaseState, StoreError> {
        self.lock_key(tx, &format!("case|{case_id}")).await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&mut **tx)
            .await?;
        let state = state.ok_or(StoreError::CaseNotFound(case_id))?;
        let current: CaseState = state.parse().map_err(|message| StoreError::Corrupt {
            event_id: format!("case {case_id}"),
            message,
        })?;
        if !from.contains(&current) {
            return Err(StoreError::WrongState {
                case_id,
                state,
                action,
            });
        }
        sqlx::query("UPDATE cases SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(ts(now))
            .bind(case_id)
            .execute(&mut **tx)
            .await?;
        append_history(
            tx,
            case_id,
            now,
            actor,
            action,
            Some(current.as_str()),
            to.as_str(),
            detail,
        )
        .await?;
        Ok(current)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_history(
    tx: &mut Transaction<'static, Any>,
    case_id: i64,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    from: Option<&str>,
    to: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_history (case_id, at, actor, action, from_state, to_state, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(case_id)
    .bind(ts(at))
    .bind(actor.to_string())
    .bind(action.to_string())
    .bind(from.map(str::to_string))
    .bind(to.to_string())
    .bind(detail.map(str::to_string))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A database URL fit for an error message: no password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
