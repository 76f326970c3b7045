//! An [`EventSink`] that records through `vigil serve`'s API, so a worker on another
//! machine records without reaching the database: events go to `POST /api/events`,
//! sightings (with their picture) to `POST /api/sightings`, both with an operator's
//! bearer token.
//!
//! The service not answering, answering 5xx or 429, or refusing the token (a deployment
//! mistake an operator will mend) is [`SinkError::Unavailable`]: the record is kept and
//! sent again. Any other 4xx says the record itself is wrong, [`SinkError::Refused`].

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use vigil_core::sighting::SightingUpload;
use vigil_core::{EventSink, Recorded, Sighting, SinkError, ViolationEvent};

#[derive(Debug, thiserror::Error)]
pub enum HttpSinkError {
    #[error("case service URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

pub struct HttpSink {
    base: url::Url,
    token: String,
    client: reqwest::blocking::Client,
}

#[derive(Deserialize)]
struct IntakeAnswer {
    case_id: i64,
    outcome: String,
}

#[derive(Deserialize)]
struct SightingAnswer {
    recorded: bool,
}

impl HttpSink {
    /// `base`: where `vigil serve` answers (`https://cases.example/`); `token`: an
    /// operator's API token.
    pub fn new(base: &str, token: String, timeout: Duration) -> Result<Self, HttpSinkError> {
        let bad = |message: String| HttpSinkError::Url {
            url: base.to_string(),
            message,
        };
        let mut url = url::Url::parse(base).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| HttpSinkError::Client(e.to_string()))?;
        Ok(Self {
            base: url,
            token,
            client,
        })
    }

    fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, SinkError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| SinkError::Refused(e.to_string()))?;
        let response = self
            .client
            .post(url.clone())
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .map_err(|e| SinkError::Unavailable(format!("{url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<T>()
                .map_err(|e| SinkError::Unavailable(format!("{url}: unreadable answer: {e}")));
        }
        let detail = response
            .json::<serde_json::Value>()
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default();
        let message = format!("{url}: {status} {detail}");
        match status.as_u16() {
            401 | 403 | 408 | 429 => Err(SinkError::Unavailable(message)),
            400..=499 => Err(SinkError::Refused(message)),
            _ => Err(SinkError::Unavailable(message)),
        }
    }
}

impl EventSink for HttpSink {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        let answer: IntakeAnswer = self.post("api/events", event)?;
        Recorded::from_outcome(&answer.outcome, answer.case_id).ok_or_else(|| {
            SinkError::Unavailable(format!("unknown intake outcome `{}`", answer.outcome))
        })
    }

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        let picture = match &sighting.thumbnail {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                Err(e) => {
                    tracing::warn!(picture = %path, error = %e, "the sighting's picture cannot be read; sent without it");
                    None
                }
            },
            None => None,
        };
        let upload = SightingUpload {
            sighting: Sighting {
                thumbnail: None,
                ..sighting.clone()
            },
            picture_jpeg_base64: picture,
        };
        let answer: SightingAnswer = self.post("api/sightings", &upload)?;
        Ok(answer.recorded)
    }
}
