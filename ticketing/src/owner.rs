//! Owner identification: approved cases are looked up in the vehicle registry. The
//! registry is another agency's system and will be down at times: a case that cannot be
//! looked up waits in `owner_pending` and is retried with backoff, never dropped.

use std::time::Duration as StdDuration;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The registered owner and vehicle, as the registry returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Owner {
    pub plate: String,
    pub owner_name: String,
    #[serde(default)]
    pub owner_id_number: Option<String>,
    pub address: String,
    /// The administrative unit of the address: an owner elsewhere is handled there.
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub vehicle_type: Option<String>,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub colour: Option<String>,
    /// white, yellow, blue or red.
    #[serde(default)]
    pub plate_colour: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// e.g. `https://registry.example.gov.vn/`; plates are looked up at
    /// `<base>api/v1/vehicles/<plate>`.
    pub base_url: reqwest::Url,
    pub timeout: StdDuration,
    /// Tries per lookup, before the case is left pending for a later round.
    pub attempts: u32,
    /// Wait before the second try; doubled for each try after.
    pub backoff: StdDuration,
    /// Sent as a bearer token, if the registry asks for one.
    pub token: Option<String>,
}

impl RegistryConfig {
    pub fn new(base_url: &str) -> Result<Self, RegistryError> {
        let mut base_url = reqwest::Url::parse(base_url)
            .map_err(|e| RegistryError::Config(format!("registry URL `{base_url}`: {e}")))?;
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(Self {
            base_url,
            timeout: StdDuration::from_secs(10),
            attempts: 3,
            backoff: StdDuration::from_millis(500),
            token: None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Config(String),
    #[error("vehicle registry unavailable: {0}")]
    Unavailable(String),
    #[error("vehicle registry has no vehicle with plate {0}")]
    NotFound(String),
    #[error("vehicle registry answered something unreadable: {0}")]
    Malformed(String),
}

#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    config: RegistryConfig,
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// Look a plate up, retrying transport failures and server errors with backoff.
    pub async fn lookup(&self, plate: &str) -> Result<Owner, RegistryError> {
        let mut url = self.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|_| RegistryError::Config("registry URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", "vehicles", plate]);
        let mut wait = self.config.backoff;
        let mut last = String::new();
        for attempt in 1..=self.config.attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            let mut request = self.http.get(url.clone());
            if let Some(token) = &self.config.token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
                    return Err(RegistryError::NotFound(plate.to_string()));
                }
                Ok(resp) if resp.status().is_success() => {
                    return resp
                        .json::<Owner>()
                        .await
                        .map_err(|e| RegistryError::Malformed(e.to_string()));
                }
                Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 429 => {
                    last = format!("HTTP {}", resp.status());
                }
                Ok(resp) => {
                    // A client error will not mend itself by retrying.
                    return Err(RegistryError::Unavailable(format!(
                        "HTTP {} from {}",
                        resp.status(),
                        self.config.base_url
                    )));
                }
                Err(e) => last = describe_failure(&e),
            }
            tracing::debug!(plate, attempt, error = %last, "registry lookup failed");
        }
        Err(RegistryError::Unavailable(last))
    }
}

pub(crate) fn describe_failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!("{kind} ({}://{})", u.scheme(), u.authority()),
        None => kind.to_string(),
    }
}

/// What one round of owner identification did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerRound {
    pub identified: usize,
    pub pending: usize,
    /// Not in the registry: sent back to review (a misread or cloned plate).
    pub returned_to_review: usize,
}

/// How long a pending case waits before its next lookup: doubling from 1 minute, capped
/// at 1 hour, so a registry outage of a day is retried ~30 times per case, not thousands.
pub fn retry_delay(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 6) as u32;
    Duration::minutes((1i64 << exp).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_delay(0), Duration::minutes(1));
        assert_eq!(retry_delay(3), Duration::minutes(8));
        assert_eq!(retry_delay(50), Duration::minutes(60));
    }

    #[test]
    fn a_bad_registry_url_is_named() {
        let err = RegistryConfig::new("not a url").unwrap_err().to_string();
        assert!(err.contains("registry URL `not a url`"), "{err}");
    }
}
