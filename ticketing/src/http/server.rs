//! Serving the router over TCP with the limits a server facing the network needs: at most
//! `max_connections` at once (the next waits in the kernel's backlog, not in memory), a
//! request's headers read within `header_timeout` and its body within `body_timeout`
//! (a client trickling bytes cannot hold a connection), a connection that sends nothing
//! at all closed after `header_timeout` too, at most `per_address` connections from one
//! address (a trusted proxy excepted), and a graceful stop that lets the requests in
//! flight finish.
//!
//! The first byte is waited for here, not by hyper: the server speaks HTTP/1 and HTTP/2,
//! and hyper's protocol detection reads the first bytes with no timer of its own, so a
//! connection that never sent one held its slot for ever (the second review: 1,100 of
//! them held all 1,024 slots for two minutes).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::{AppState, router};

#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    /// Connections one address may hold at once; more are closed as they come. A
    /// trusted proxy (whose connections carry many clients) is not limited.
    pub per_address: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// How long a stop waits for the requests in flight.
    pub drain_for: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            per_address: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_for: Duration::from_secs(30),
        }
    }
}

/// Serve until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ServerLimits::default(), shutdown).await
}

pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let proxies = state.proxies.addresses.clone();
    let app = router(state).layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let held = PerAddress::default();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, addr): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, a reset before accept: wait a moment and
                    // go on; the listener itself is fine.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = held.take(addr.ip(), limits.per_address, &proxies) else {
            tracing::debug!(client = %addr, "too many connections from this address; closed");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            app.clone().oneshot(req)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let first_byte = limits.header_timeout;
        tokio::spawn(async move {
            // Nothing sent within the header timeout: closed, its slot freed.
            let mut one = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut one)).await {
                Ok(Ok(n)) if n > 0 => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(connection).await {
                        tracing::debug!(client = %addr, error = %e, "connection ended");
                    }
                }
                _ => tracing::debug!(client = %addr, "sent nothing; closed"),
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_for, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after {:?}; stopping anyway",
            limits.drain_for
        );
    }
    Ok(())
}

/// How many connections each address holds now.
#[derive(Debug, Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in its address's count, given back when dropped.
struct Slot {
    held: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    /// A place for one more connection from `ip`, unless it holds `limit` already (a
    /// trusted proxy is not limited).
    fn take(&self, ip: IpAddr, limit: usize, proxies: &[IpAddr]) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= limit.max(1) && !proxies.contains(&ip) {
            return None;
        }
        *count += 1;
        Some(Slot {
            held: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.held.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
