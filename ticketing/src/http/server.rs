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
                Ok(Ok(n)) if n > 0 => match first_line(stream, first_byte).await {
                    FirstLine::Served(stream) => {
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        if let Err(e) = watcher.watch(connection).await {
                            tracing::debug!(client = %addr, error = %e, "connection ended");
                        }
                    }
                    FirstLine::TooLong => {
                        tracing::debug!(client = %addr, "request line too long; answered 414")
                    }
                    FirstLine::Gone => {
                        tracing::debug!(client = %addr, "no request line in time; closed")
                    }
                },
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

/// The longest request line taken (method, target, version): hyper's own limit on a
/// target, far above any address of this API. A longer one is answered 414 here, with the
/// safety headers every answer carries; left to hyper, its 414 (and its 431 for a head
/// over 400 KiB) had none. Shorter ones go on to the router, which bounds each query.
const MAX_REQUEST_LINE: usize = 64 * 1024;

enum FirstLine {
    /// The connection, the bytes read to check it replayed first.
    Served(Replay),
    TooLong,
    Gone,
}

/// Read the connection's first request line (or the HTTP/2 preface) within `patience`:
/// too long, it is answered 414 and closed; otherwise the connection is handed on with
/// what was read put back in front.
async fn first_line(mut stream: tokio::net::TcpStream, patience: Duration) -> FirstLine {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut read = Vec::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let line_end = read.windows(2).position(|w| w == b"\r\n");
        let too_long = match line_end {
            Some(end) => end > MAX_REQUEST_LINE,
            None => read.len() > MAX_REQUEST_LINE,
        };
        if !too_long && line_end.is_some() {
            return FirstLine::Served(Replay::new(read, stream));
        }
        if too_long {
            let answer = too_long_answer();
            let _ = tokio::time::timeout(patience, stream.write_all(&answer)).await;
            let _ = stream.shutdown().await;
            // Closing with the rest of the request unread would reset the connection
            // and could take the answer with it: read a little more away first.
            let mut rest = [0u8; 8192];
            let mut drained = 0usize;
            let linger = tokio::time::Instant::now() + Duration::from_secs(2);
            while drained < (1 << 20) {
                match tokio::time::timeout_at(linger, stream.read(&mut rest)).await {
                    Ok(Ok(n)) if n > 0 => drained += n,
                    _ => break,
                }
            }
            return FirstLine::TooLong;
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return FirstLine::Gone,
            Ok(Ok(n)) => read.extend_from_slice(&chunk[..n]),
            // Not even a request line within the header timeout: closed, as hyper
            // closes a connection whose headers do not come in time.
            Err(_) => return FirstLine::Gone,
        }
    }
}

/// The 414 answer, as the router would write it: a JSON error and the safety headers.
fn too_long_answer() -> Vec<u8> {
    let body =
        format!("{{\"error\":\"the request line is longer than {MAX_REQUEST_LINE} bytes\"}}");
    let mut headers = axum::http::HeaderMap::new();
    super::hardening::safety_headers(&mut headers, false);
    let mut out = format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// A connection whose first bytes were read already: they are read again first.
struct Replay {
    read: Vec<u8>,
    at: usize,
    stream: tokio::net::TcpStream,
}

impl Replay {
    fn new(read: Vec<u8>, stream: tokio::net::TcpStream) -> Self {
        Self {
            read,
            at: 0,
            stream,
        }
    }
}

impl tokio::io::AsyncRead for Replay {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at < self.read.len() {
            let n = (self.read.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.read[at..at + n]);
            self.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Replay {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
