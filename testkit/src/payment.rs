//! The payment provider is an outside system: a stand-in on 127.0.0.1 takes Vigil's signed
//! order requests, and, when a test "pays", sends the signed callback a real provider
//! would send to the order's callback URL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;
use vigil_core::clock::Clock;
use vigil_ticketing::payment::{
    OrderRequest, PaymentCallback, PaymentSecret, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

pub struct PaymentStandIn {
    addr: SocketAddr,
    secret: PaymentSecret,
    clock: Arc<dyn Clock>,
    /// Orders by order id (the notice code), as Vigil asked for them.
    pub orders: Arc<Mutex<HashMap<String, OrderRequest>>>,
    /// Order requests refused because their signature did not check.
    pub refused: Arc<Mutex<usize>>,
}

impl PaymentStandIn {
    /// A provider that signs and checks with `secret`, at the time `clock` tells.
    pub async fn start(secret: PaymentSecret, clock: Arc<dyn Clock>) -> Self {
        let orders: Arc<Mutex<HashMap<String, OrderRequest>>> = Arc::default();
        let refused: Arc<Mutex<usize>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind payment provider");
        let addr = listener.local_addr().expect("payment provider address");
        let (o, r, s, c) = (
            orders.clone(),
            refused.clone(),
            secret.clone(),
            clock.clone(),
        );
        let app = Router::new().route(
            "/api/v1/orders",
            post(move |headers: HeaderMap, body: Bytes| {
                let (o, r, s, now) = (o.clone(), r.clone(), s.clone(), c.now());
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                    if s.verify(
                        header(TIMESTAMP_HEADER),
                        header(SIGNATURE_HEADER),
                        &body,
                        now,
                    )
                    .is_err()
                    {
                        *r.lock().unwrap() += 1;
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let Ok(order) = serde_json::from_slice::<OrderRequest>(&body) else {
                        return StatusCode::BAD_REQUEST.into_response();
                    };
                    let id = order.order_id.clone();
                    o.lock().unwrap().insert(id.clone(), order);
                    axum::Json(serde_json::json!({
                        "order_id": id,
                        "pay_url": format!("http://{addr}/pay/{id}"),
                    }))
                    .into_response()
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            secret,
            clock,
            orders,
            refused,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The order Vigil asked for, for notice `code`.
    pub fn order(&self, code: &str) -> Option<OrderRequest> {
        self.orders.lock().unwrap().get(code).cloned()
    }

    /// Pay order `code` in full, as transaction `transaction_id`: the signed callback goes to
    /// the order's callback URL. Returns the status and body Vigil answered.
    pub async fn pay(&self, code: &str, transaction_id: &str) -> (u16, serde_json::Value) {
        let order = self.order(code).expect("no order for that notice");
        let callback = PaymentCallback {
            order_id: order.order_id.clone(),
            transaction_id: transaction_id.to_string(),
            amount_vnd: order.amount_vnd,
            status: "paid".into(),
            paid_at: self.clock.now(),
        };
        let body = serde_json::to_vec(&callback).expect("callback JSON");
        self.deliver(
            &order.callback_url,
            &body,
            &self.secret,
            self.clock.now().timestamp(),
        )
        .await
    }

    /// Send `body` to `url` signed with `secret` at `timestamp`: what a real provider does,
    /// or, with the wrong secret or body, what a forger does.
    pub async fn deliver(
        &self,
        url: &str,
        body: &[u8],
        secret: &PaymentSecret,
        timestamp: i64,
    ) -> (u16, serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, secret.sign(timestamp, body))
            .body(body.to_vec())
            .send()
            .await
            .expect("callback delivered");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }
}
