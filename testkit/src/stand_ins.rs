//! The vehicle registry and the publication receiver are outside systems: local stand-in
//! servers play them on 127.0.0.1, and can be stopped and started again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vigil_ticketing::owner::Owner;

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
