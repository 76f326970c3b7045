//! Empty case stores on real databases: SQLite in a temporary folder, and PostgreSQL from
//! `VIGIL_TEST_POSTGRES_URL` (default the local server) in a fresh schema each time.

use chrono::Utc;
use sqlx::any::AnyPoolOptions;
use vigil_ticketing::db::{CaseStore, redact};

pub fn postgres_url() -> String {
    std::env::var("VIGIL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A URL for a new, empty schema on the test server. Panics (a failure, never a skip)
/// when the server is down. Schemas more than an hour old, left by earlier runs, are dropped.
pub async fn fresh_postgres_url() -> String {
    let base = postgres_url();
    let now = Utc::now().timestamp();
    let schema = format!("vigil_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is not reachable ({e}); .ci/run starts it",
                redact(&base)
            )
        });
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'vigil\\_test\\_%'",
    )
    .fetch_all(&admin)
    .await
    .expect("list test schemas");
    for name in old {
        let stamp = name.split('_').nth(2).and_then(|t| t.parse::<i64>().ok());
        if stamp.is_none_or(|t| now - t > 3600) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&admin)
                .await;
        }
    }
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("create test schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

pub async fn postgres() -> CaseStore {
    CaseStore::open(&fresh_postgres_url().await)
        .await
        .expect("open the test schema")
}

/// ("sqlite", an empty store, the temporary folder it lives in): for tests of the HTTP
/// layer, where the backend makes no difference.
pub async fn sqlite() -> (&'static str, CaseStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = CaseStore::open_sqlite(&dir.path().join("cases.db"))
        .await
        .unwrap();
    ("sqlite", store, dir)
}

/// (backend name, an empty store, the temporary folder a SQLite store lives in)
pub async fn both() -> Vec<(&'static str, CaseStore, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = CaseStore::open_sqlite(&dir.path().join("cases.db"))
        .await
        .unwrap();
    vec![
        ("sqlite", sqlite, dir),
        ("postgres", postgres().await, tempfile::tempdir().unwrap()),
    ]
}
