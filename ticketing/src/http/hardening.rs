//! What every answer of the server carries, whichever handler made it: headers that keep
//! browsers from sniffing, framing, caching or leaking what they were sent; errors as
//! JSON, also those the framework makes itself (a malformed path or query, a wrong
//! method); and the client's address as the trusted proxy in front of the server saw it.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// Documents the server renders itself (notices, citizen pages) hold only their own
/// inline styles and the evidence pictures and clips of this origin.
const DOCUMENT_POLICY: &str = "default-src 'none'; img-src 'self'; media-src 'self'; \
     style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// An error body the framework made is a line of text; more than this is not one.
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// Proxies whose word on the client's address is taken, and the header they put it in.
#[derive(Debug, Clone)]
pub struct TrustedProxies {
    pub addresses: Vec<IpAddr>,
    /// `x-forwarded-for` unless configured otherwise: a list, the client first, each proxy
    /// appending the address it received from.
    pub header: HeaderName,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }
}

impl TrustedProxies {
    /// The client's address: the peer's own unless the peer is a trusted proxy; then the
    /// nearest address in the header that is not a trusted proxy (entries further left
    /// were written by the client and prove nothing).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.addresses.contains(&peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all(&self.header).iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                let Some(ip) = parse_forwarded(entry.trim()) else {
                    return client;
                };
                client = ip;
                if !self.addresses.contains(&ip) {
                    return client;
                }
            }
        }
        client
    }
}

fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Replace the connection's address by the client's when a trusted proxy forwarded the
/// request, so that rate limits and the audit log see clients, not the proxy.
pub(super) async fn client_address(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !state.proxies.addresses.is_empty()
        && let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
    {
        let client = state.proxies.client(peer.ip(), req.headers());
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
    next.run(req).await
}

pub(super) async fn response_headers(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let resp = if resp.status().is_client_error() || resp.status().is_server_error() {
        error_as_json(resp).await
    } else {
        resp
    };
    let mut resp = resp;
    let is_html = content_type(resp.headers()).starts_with("text/html");
    safety_headers(resp.headers_mut(), is_html);
    resp
}

/// The headers every answer carries (see [`response_headers`]); the server's own answers
/// made before the router (a request line too long) carry them too.
pub(super) fn safety_headers(h: &mut HeaderMap, is_html: bool) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Cases, notices, plates and evidence: nothing this server answers belongs in a
        // shared or a disk cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if !h.contains_key(header::REFERRER_POLICY) {
        // Citizen pages carry the plate in their address.
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if is_html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCUMENT_POLICY),
        );
    }
}

fn content_type(h: &HeaderMap) -> &str {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The framework's own rejections are plain text (or empty, for a wrong method); the API
/// speaks JSON, so they are wrapped as `{"error": ...}`. Pages and JSON pass as they are.
async fn error_as_json(resp: Response) -> Response {
    let kind = content_type(resp.headers());
    if kind.starts_with("application/json") || kind.starts_with("text/html") {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Body::from(json!({ "error": message }).to_string());
    (parts, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies {
            addresses: list.iter().map(|a| a.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let p = proxies(&["10.0.0.1"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client that is not the proxy cannot pick its own address.
        assert_eq!(
            p.client(ip("203.0.113.9"), &forwarded(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        // Through the proxy: the address the proxy saw, not what the client wrote before it.
        assert_eq!(
            p.client(ip("10.0.0.1"), &forwarded(&["6.6.6.6, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // Two proxies in a row, over two header lines.
        let p2 = proxies(&["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            p2.client(ip("10.0.0.1"), &forwarded(&["198.51.100.7", "10.0.0.2"])),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at what is known.
        assert_eq!(
            p.client(ip("10.0.0.1"), &forwarded(&["nonsense"])),
            ip("10.0.0.1")
        );
        assert_eq!(p.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(
            p.client(ip("10.0.0.1"), &forwarded(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
    }
}
