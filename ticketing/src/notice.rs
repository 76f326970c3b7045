//! Notices (Form 01, Circular 73/2024) and their publication. A notice covers every
//! identified violation of one vehicle decided together: each is fined, only the largest
//! point deduction applies (Decree 168/2024 Art. 50.1.b). Publishing goes through a
//! transactional outbox: the notice and its outbox row commit together, a publisher
//! delivers the row afterwards (at least once; receivers dedup on the idempotency key).

use std::path::Path;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::StoreError;
use crate::owner::Owner;

/// Unresolved this long after its notice, a vehicle is flagged (Circular 73/2024 Art. 24).
pub const FLAG_AFTER: Duration = Duration::days(20);

/// Who issues and handles notices: printed on each notice and in each publication record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub detecting_unit: String,
    pub handling_unit: String,
    pub contact_phone: String,
    /// Where citizens look notices up, printed on the notice.
    #[serde(default)]
    pub lookup_url: Option<String>,
}

impl Agency {
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StoreError::Invalid(format!("agency file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| StoreError::Invalid(format!("agency file {}: {e}", path.display())))
    }
}

/// One violation as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedViolation {
    pub case_id: i64,
    pub violation: String,
    /// Local time (Asia/Ho_Chi_Minh), RFC 3339.
    pub time: String,
    pub location: String,
    pub camera_id: String,
    pub article: Option<String>,
    pub decree: Option<String>,
    pub fine_min_vnd: Option<u64>,
    pub fine_max_vnd: Option<u64>,
    pub points: Option<u8>,
}

/// The publication record of Circular 73/2024 Art. 24.4: vehicle type, plate, plate
/// colour, time, location, violation, detecting unit, handling unit, contact phone. No
/// personal data: this is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicationRecord {
    pub notice_code: String,
    pub vehicle_type: String,
    pub plate: String,
    pub plate_colour: String,
    pub violations: Vec<PublishedViolation>,
    pub detecting_unit: String,
    pub handling_unit: String,
    pub contact_phone: String,
    pub fine_total_min_vnd: u64,
    pub fine_total_max_vnd: u64,
    pub points: u8,
    pub issued_at: DateTime<Utc>,
}

/// A notice with what it was issued to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub code: String,
    pub record: PublicationRecord,
    pub owner: Owner,
    pub issued_at: DateTime<Utc>,
    pub flag_due_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The provider's transaction (or `counter:<receipt>`) that paid the notice.
    pub payment_reference: Option<String>,
    /// What online payment asks: the middle of the total range of the cases that can be
    /// paid now (see [`crate::payment::amount_due_for`]); 0 when none can.
    pub amount_due_vnd: u64,
    /// The cases this notice's payment settles: those not appealed, paid or closed.
    pub payable_case_ids: Vec<i64>,
    /// References citizens typed as proof of payment: for an officer to check.
    pub payment_claims: Vec<PaymentClaim>,
    pub case_ids: Vec<i64>,
    /// (case id, event id) of every event behind the notice; each event's package is in
    /// the service's evidence store under its id.
    pub evidence: Vec<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PaymentClaim {
    pub reference: String,
    pub claimed_at: DateTime<Utc>,
}

/// A notice code: 10 characters of Crockford base32 (50 bits), easy to read out on the
/// phone; with the plate it is what a citizen looks a notice up with.
pub fn new_notice_code() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a notice code: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect())
}

pub(crate) fn plate_colour_of(owner: &Owner) -> String {
    owner
        .plate_colour
        .clone()
        .unwrap_or_else(|| "white".to_string())
}

pub(crate) fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        event_id: what.into(),
        message: e.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Driver {
    pub name: String,
    pub id_number: String,
    #[serde(default)]
    pub address: Option<String>,
}

/// Where publication records go: the traffic police site / VNeTraffic's intake.
#[derive(Clone)]
pub struct Webhook {
    http: reqwest::Client,
    url: reqwest::Url,
    token: Option<String>,
}

impl Webhook {
    pub fn new(url: &str, token: Option<String>) -> Result<Self, StoreError> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| StoreError::Invalid(format!("publication webhook URL `{url}`: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(15))
            .build()
            .map_err(|e| StoreError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Self { http, url, token })
    }

    pub(crate) async fn deliver(&self, key: &str, payload: &str) -> Result<(), String> {
        let mut req = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(if e.is_timeout() {
                "timed out".into()
            } else {
                "connection failed".into()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_codes_are_ten_readable_characters() {
        let a = new_notice_code().unwrap();
        let b = new_notice_code().unwrap();
        assert_eq!(a.len(), 10);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() && !"ILOU".contains(c))
        );
    }
}
