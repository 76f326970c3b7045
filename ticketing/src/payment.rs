//! Payment of notices through the payment provider (the province's payment gateway or the
//! National Public Service Portal). A notice is paid only when the provider says so, in a
//! callback signed with the secret the two share: the signature, the notice code and the
//! amount are checked, and the same callback delivered twice records one payment. What a
//! citizen types is a claim for an officer to check, never a payment.
//!
//! The provider's side of the exchange, as Vigil speaks it (docs/reference/payment.md):
//! - Vigil asks for a payment order: `POST <base>api/v1/orders` with
//!   `{order_id, amount_vnd, description, return_url, callback_url}`, signed like a
//!   callback; the provider answers `{order_id, pay_url}` and the citizen is sent there.
//! - The provider reports a payment: `POST <callback_url>` with
//!   `{order_id, transaction_id, amount_vnd, status, paid_at}`, headers
//!   `X-Payment-Timestamp` (Unix seconds) and `X-Payment-Signature`
//!   (hex HMAC-SHA256 of `"<timestamp>.<body>"`). Anything but a 2xx is retried by it.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::notice::PublicationRecord;

pub const TIMESTAMP_HEADER: &str = "x-payment-timestamp";
pub const SIGNATURE_HEADER: &str = "x-payment-signature";

/// A callback older or newer than this is refused: a recorded callback cannot be
/// replayed later (and a replay inside the window is harmless: it records nothing new).
pub const CALLBACK_WINDOW_SECONDS: i64 = 300;

/// A callback's body is a few hundred bytes; anything far larger is not one.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// What a notice asks to be paid. The fine for one violation is the middle of its range
/// unless the decision finds aggravating or mitigating circumstances (Law on Handling
/// Administrative Violations, Art. 23.4); those are an officer's decision at the counter,
/// so online payment offers the middle of the notice's total range.
pub fn amount_due(record: &PublicationRecord) -> u64 {
    middle(record.fine_total_min_vnd, record.fine_total_max_vnd)
}

/// What a notice asks while only the cases `payable` can be paid (the others appealed,
/// decided against the driver the owner named): the middle of those cases' total range.
/// All of its cases payable, it is [`amount_due`].
pub fn amount_due_for(record: &PublicationRecord, payable: &[i64]) -> u64 {
    if record
        .violations
        .iter()
        .all(|v| payable.contains(&v.case_id))
    {
        return amount_due(record);
    }
    let (min, max) = record
        .violations
        .iter()
        .filter(|v| payable.contains(&v.case_id))
        .fold((0u64, 0u64), |(min, max), v| {
            (
                min.saturating_add(v.fine_min_vnd.unwrap_or(0)),
                max.saturating_add(v.fine_max_vnd.unwrap_or(0)),
            )
        });
    middle(min, max)
}

fn middle(min: u64, max: u64) -> u64 {
    min / 2 + max / 2 + (min % 2 + max % 2) / 2
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{0}")]
    Config(String),
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    #[error("payment provider answered something unreadable: {0}")]
    Malformed(String),
    /// The callback is not from the provider (or not this one): unsigned, badly signed,
    /// or outside the time window.
    #[error("payment callback refused: {0}")]
    Unsigned(String),
    #[error("payment callback malformed: {0}")]
    BadCallback(String),
}

/// The shared secret: at least 32 bytes, never logged.
#[derive(Clone)]
pub struct PaymentSecret(Vec<u8>);

impl PaymentSecret {
    pub fn new(bytes: Vec<u8>) -> Result<Self, PaymentError> {
        if bytes.len() < 32 {
            return Err(PaymentError::Config(format!(
                "the payment secret is {} bytes; it needs at least 32",
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    /// From a file holding the secret (surrounding whitespace ignored).
    pub fn from_file(path: &std::path::Path) -> Result<Self, PaymentError> {
        let text = std::fs::read(path).map_err(|e| {
            PaymentError::Config(format!("payment secret file {}: {e}", path.display()))
        })?;
        let trimmed = text.trim_ascii().to_vec();
        Self::new(trimmed).map_err(|e| {
            PaymentError::Config(format!("payment secret file {}: {e}", path.display()))
        })
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; new_from_slice cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The signature header's value for `body` sent at `timestamp`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        hex::encode(self.mac(timestamp, body).finalize().into_bytes())
    }

    /// Check a callback's headers against its body, in constant time, and its timestamp
    /// against `now`.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), PaymentError> {
        let timestamp = timestamp
            .ok_or_else(|| PaymentError::Unsigned(format!("no {TIMESTAMP_HEADER} header")))?;
        let signature = signature
            .ok_or_else(|| PaymentError::Unsigned(format!("no {SIGNATURE_HEADER} header")))?;
        let at: i64 = timestamp.trim().parse().map_err(|_| {
            PaymentError::Unsigned(format!("{TIMESTAMP_HEADER} is not a number of seconds"))
        })?;
        let skew = now.timestamp().saturating_sub(at).saturating_abs();
        if skew > CALLBACK_WINDOW_SECONDS {
            return Err(PaymentError::Unsigned(format!(
                "signed {skew} s away from now; at most {CALLBACK_WINDOW_SECONDS} s are accepted"
            )));
        }
        let given = hex::decode(signature.trim())
            .map_err(|_| PaymentError::Unsigned(format!("{SIGNATURE_HEADER} is not hex")))?;
        self.mac(at, body)
            .verify_slice(&given)
            .map_err(|_| PaymentError::Unsigned("the signature does not match".into()))
    }
}

impl std::fmt::Debug for PaymentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentSecret(..)")
    }
}

/// A payment as the provider reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCallback {
    /// The notice code the order was made for.
    pub order_id: String,
    /// The provider's id of the payment: what makes a second delivery the same payment.
    pub transaction_id: String,
    pub amount_vnd: u64,
    /// `paid`; anything else (failed, cancelled) records nothing.
    pub status: String,
    pub paid_at: DateTime<Utc>,
}

impl PaymentCallback {
    pub fn parse(body: &[u8]) -> Result<Self, PaymentError> {
        let cb: Self =
            serde_json::from_slice(body).map_err(|e| PaymentError::BadCallback(e.to_string()))?;
        let id_like = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        };
        if !id_like(&cb.order_id) {
            return Err(PaymentError::BadCallback(
                "order_id is 1 to 64 letters, digits or -_.:".into(),
            ));
        }
        if !id_like(&cb.transaction_id) {
            return Err(PaymentError::BadCallback(
                "transaction_id is 1 to 64 letters, digits or -_.:".into(),
            ));
        }
        Ok(cb)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRequest {
    pub order_id: String,
    pub amount_vnd: u64,
    pub description: String,
    pub return_url: String,
    pub callback_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub pay_url: String,
}

#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// e.g. `https://pay.example.gov.vn/`; orders are made at `<base>api/v1/orders`.
    pub base_url: reqwest::Url,
    /// Where the provider sends its callbacks: this service's public address followed by
    /// `/api/payments/callback`.
    pub callback_url: reqwest::Url,
    pub secret: PaymentSecret,
    pub timeout: StdDuration,
}

impl PaymentConfig {
    pub fn new(
        base_url: &str,
        callback_url: &str,
        secret: PaymentSecret,
    ) -> Result<Self, PaymentError> {
        let parse = |what: &str, url: &str| {
            reqwest::Url::parse(url)
                .map_err(|e| PaymentError::Config(format!("{what} `{url}`: {e}")))
        };
        let mut base = parse("payment provider URL", base_url)?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            base_url: base,
            callback_url: parse("payment callback URL", callback_url)?,
            secret,
            timeout: StdDuration::from_secs(10),
        })
    }
}

/// The client Vigil uses to ask the provider for payment orders.
#[derive(Clone)]
pub struct PaymentProvider {
    http: reqwest::Client,
    pub config: PaymentConfig,
}

impl PaymentProvider {
    pub fn new(config: PaymentConfig) -> Result<Self, PaymentError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PaymentError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// Ask for an order paying `amount_vnd` for notice `code`; the provider answers the
    /// same order for the same code, so asking twice is harmless.
    pub async fn order(
        &self,
        code: &str,
        amount_vnd: u64,
        return_url: &str,
        now: DateTime<Utc>,
    ) -> Result<Order, PaymentError> {
        let url = self
            .config
            .base_url
            .join("api/v1/orders")
            .map_err(|e| PaymentError::Config(format!("payment provider URL: {e}")))?;
        let body = serde_json::to_vec(&OrderRequest {
            order_id: code.to_string(),
            amount_vnd,
            description: format!("Nộp phạt thông báo {code}"),
            return_url: return_url.to_string(),
            callback_url: self.config.callback_url.to_string(),
        })
        .map_err(|e| PaymentError::Config(e.to_string()))?;
        let at = now.timestamp();
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, at.to_string())
            .header(SIGNATURE_HEADER, self.config.secret.sign(at, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(crate::owner::describe_failure(&e)))?;
        if !resp.status().is_success() {
            return Err(PaymentError::Unavailable(format!(
                "HTTP {} from {}",
                resp.status(),
                self.config.base_url
            )));
        }
        let order: Order = resp
            .json()
            .await
            .map_err(|e| PaymentError::Malformed(e.to_string()))?;
        if order.order_id != code {
            return Err(PaymentError::Malformed(format!(
                "asked for an order for notice {code}, got one for {}",
                order.order_id.chars().take(64).collect::<String>()
            )));
        }
        let pay = reqwest::Url::parse(&order.pay_url)
            .map_err(|e| PaymentError::Malformed(format!("pay_url: {e}")))?;
        if !matches!(pay.scheme(), "https" | "http") {
            return Err(PaymentError::Malformed(format!(
                "pay_url has scheme {}",
                pay.scheme()
            )));
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> PaymentSecret {
        PaymentSecret::new(vec![7u8; 32]).unwrap()
    }

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let s = secret();
        let body = br#"{"order_id":"ABC"}"#;
        let sig = s.sign(1_800_000_000, body);
        let now = at(1_800_000_060);
        s.verify(Some("1800000000"), Some(&sig), body, now).unwrap();
        let err = s
            .verify(
                Some("1800000000"),
                Some(&sig),
                br#"{"order_id":"ABD"}"#,
                now,
            )
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // The timestamp is signed: moving it breaks the signature.
        assert!(s.verify(Some("1800000001"), Some(&sig), body, now).is_err());
        let other = PaymentSecret::new(vec![8u8; 32]).unwrap();
        assert!(
            other
                .verify(Some("1800000000"), Some(&sig), body, now)
                .is_err()
        );
    }

    #[test]
    fn an_old_unsigned_or_garbled_callback_is_refused_by_name() {
        let s = secret();
        let body = b"{}";
        let sig = s.sign(1_800_000_000, body);
        let late = s
            .verify(Some("1800000000"), Some(&sig), body, at(1_800_000_301))
            .unwrap_err()
            .to_string();
        assert!(late.contains("301 s away"), "{late}");
        let now = at(1_800_000_000);
        assert!(
            s.verify(None, Some(&sig), body, now)
                .unwrap_err()
                .to_string()
                .contains(TIMESTAMP_HEADER)
        );
        assert!(
            s.verify(Some("1800000000"), None, body, now)
                .unwrap_err()
                .to_string()
                .contains(SIGNATURE_HEADER)
        );
        assert!(s.verify(Some("soon"), Some(&sig), body, now).is_err());
        assert!(s.verify(Some("1800000000"), Some("zz"), body, now).is_err());
        assert!(
            s.verify(Some(&i64::MIN.to_string()), Some(&sig), body, now)
                .is_err()
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        let err = PaymentSecret::new(b"password".to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 32"), "{err}");
    }

    #[test]
    fn callbacks_with_odd_ids_or_fields_are_refused() {
        let ok = br#"{"order_id":"AB12","transaction_id":"T-1","amount_vnd":5,"status":"paid","paid_at":"2026-12-01T00:00:00Z"}"#;
        PaymentCallback::parse(ok).unwrap();
        let long = format!(
            r#"{{"order_id":"{}","transaction_id":"T","amount_vnd":5,"status":"paid","paid_at":"2026-12-01T00:00:00Z"}}"#,
            "A".repeat(65)
        );
        assert!(PaymentCallback::parse(long.as_bytes()).is_err());
        let slash = br#"{"order_id":"../x","transaction_id":"T","amount_vnd":5,"status":"paid","paid_at":"2026-12-01T00:00:00Z"}"#;
        assert!(PaymentCallback::parse(slash).is_err());
        let negative = br#"{"order_id":"A","transaction_id":"T","amount_vnd":-5,"status":"paid","paid_at":"2026-12-01T00:00:00Z"}"#;
        assert!(PaymentCallback::parse(negative).is_err());
        let extra = br#"{"order_id":"A","transaction_id":"T","amount_vnd":5,"status":"paid","paid_at":"2026-12-01T00:00:00Z","paid":true}"#;
        assert!(PaymentCallback::parse(extra).is_err());
    }

    #[test]
    fn the_amount_due_is_the_middle_of_the_range() {
        let mut record: PublicationRecord = serde_json::from_value(serde_json::json!({
            "notice_code": "X", "vehicle_type": "car", "plate": "30A-123.45",
            "plate_colour": "white", "violations": [], "detecting_unit": "d",
            "handling_unit": "h", "contact_phone": "1", "fine_total_min_vnd": 18_000_000u64,
            "fine_total_max_vnd": 20_000_000u64, "points": 4,
            "issued_at": "2026-12-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(amount_due(&record), 19_000_000);
        record.fine_total_min_vnd = 3;
        record.fine_total_max_vnd = 4;
        assert_eq!(amount_due(&record), 3);
        record.fine_total_min_vnd = u64::MAX;
        record.fine_total_max_vnd = u64::MAX;
        assert_eq!(amount_due(&record), u64::MAX);
    }
}
