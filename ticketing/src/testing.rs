//! Test support, for this crate's tests and (with the `test-support` feature) the
//! workspace's: empty case stores on real databases. PostgreSQL comes from
//! `VIGIL_TEST_POSTGRES_URL` (default the local server), with a fresh schema each time.
//! The vehicle registry and the publication webhook are outside systems: local stand-in
//! servers play them, and can be stopped and started again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use sqlx::any::AnyPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::owner::Owner;
use crate::store::{CaseStore, redact};

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

/// A vehicle registry on 127.0.0.1 that can be taken down and brought back on the same
/// port, answering `GET /api/v1/vehicles/{plate}` from a table.
pub struct RegistryStandIn {
    addr: SocketAddr,
    owners: Arc<Mutex<HashMap<String, Owner>>>,
    hits: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RegistryStandIn {
    pub async fn start(owners: Vec<Owner>) -> Self {
        let owners = Arc::new(Mutex::new(
            owners.into_iter().map(|o| (o.plate.clone(), o)).collect(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind registry");
        let addr = listener.local_addr().expect("registry address");
        let mut me = Self {
            addr,
            owners,
            hits: Arc::new(AtomicUsize::new(0)),
            stop: None,
            task: None,
        };
        me.run(listener);
        me
    }

    fn run(&mut self, listener: TcpListener) {
        let owners = self.owners.clone();
        let hits = self.hits.clone();
        let app = Router::new().route(
            "/api/v1/vehicles/{plate}",
            get(move |Path(plate): Path<String>| {
                let owners = owners.clone();
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let found = owners.lock().unwrap().get(&plate).cloned();
                    match found {
                        Some(o) => Json(o).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        );
        let (tx, rx) = oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Down: the port refuses connections.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Up again, on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind registry");
        self.run(listener);
    }
}

/// A publication receiver on 127.0.0.1: fails the first `failures` deliveries with HTTP
/// 500, then accepts, keeping one record per idempotency key (as a real receiver must).
pub struct WebhookStandIn {
    addr: SocketAddr,
    pub received: Arc<Mutex<HashMap<String, serde_json::Value>>>,
    pub deliveries: Arc<AtomicUsize>,
}

impl WebhookStandIn {
    pub async fn start(failures: usize) -> Self {
        let received: Arc<Mutex<HashMap<String, serde_json::Value>>> = Arc::default();
        let deliveries = Arc::new(AtomicUsize::new(0));
        let (r, d) = (received.clone(), deliveries.clone());
        let app = Router::new().route(
            "/publish",
            post(move |headers: HeaderMap, body: String| {
                let (r, d) = (r.clone(), d.clone());
                async move {
                    let n = d.fetch_add(1, Ordering::SeqCst);
                    if n < failures {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok())
                    else {
                        return StatusCode::BAD_REQUEST;
                    };
                    let Ok(value) = serde_json::from_str(&body) else {
                        return StatusCode::BAD_REQUEST;
                    };
                    r.lock().unwrap().entry(key.to_string()).or_insert(value);
                    StatusCode::OK
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let addr = listener.local_addr().expect("webhook address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            received,
            deliveries,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/publish", self.addr)
    }
}
