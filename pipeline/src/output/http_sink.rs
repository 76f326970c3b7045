//! An [`EventSink`] that records through `vigil serve`'s API, so a worker on another
//! machine records without reaching the database: each file of an event's evidence
//! package goes to `PUT /api/evidence/{event}/{file}`, then the event to
//! `POST /api/events` (which the service takes only once the package checks); sightings
//! (with their picture) go to `POST /api/sightings`; all with an operator's bearer token.
//!
//! The service not answering, answering 5xx or 429, or refusing the token (a deployment
//! mistake an operator will mend) is [`SinkError::Unavailable`]: the record is kept and
//! sent again. Any other 4xx says the record itself is wrong, [`SinkError::Refused`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_core::sighting::SightingUpload;
use vigil_core::{EventSink, Recorded, Sighting, SinkError, ViolationEvent};
use vigil_evidence::package_files;

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
    /// Where this worker files its packages (its data folder's `evidence`).
    evidence: PathBuf,
}

#[derive(Deserialize)]
struct UploadAnswer {
    stored: bool,
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
    /// operator's API token; `evidence`: where this worker files its packages.
    pub fn new(
        base: &str,
        token: String,
        timeout: Duration,
        evidence: PathBuf,
    ) -> Result<Self, HttpSinkError> {
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
            evidence,
        })
    }

    fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, SinkError> {
        let url = self.url(path)?;
        let request = self.client.post(url.clone()).json(body);
        self.send(url, request)
    }

    fn url(&self, path: &str) -> Result<url::Url, SinkError> {
        self.base
            .join(path)
            .map_err(|e| SinkError::Refused(e.to_string()))
    }

    fn send<T: serde::de::DeserializeOwned>(
        &self,
        url: url::Url,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<T, SinkError> {
        let response = request
            .bearer_auth(&self.token)
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

impl HttpSink {
    /// Send each file of the event's package (the manifest first: if the service has the
    /// package filed already, nothing more is sent).
    fn upload_package(&self, event: &ViolationEvent) -> Result<(), SinkError> {
        let dir = self.evidence.join(event.event_id.to_string());
        let names = package_files(&dir).map_err(|e| {
            SinkError::Refused(format!("event {}: its package: {e}", event.event_id))
        })?;
        for name in names {
            let bytes = std::fs::read(dir.join(&name))
                .map_err(|e| SinkError::Refused(format!("{}: {e}", dir.join(&name).display())))?;
            let url = self.url(&format!("api/evidence/{}/{name}", event.event_id))?;
            let request = self.client.put(url.clone()).body(bytes);
            let answer: UploadAnswer = self.send(url, request)?;
            if !answer.stored {
                break;
            }
        }
        Ok(())
    }
}

impl EventSink for HttpSink {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        self.upload_package(event)?;
        let answer: IntakeAnswer = self.post("api/events", event)?;
        Recorded::from_outcome(&answer.outcome, answer.case_id).ok_or_else(|| {
            SinkError::Unavailable(format!("unknown intake outcome `{}`", answer.outcome))
        })
    }

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        let upload = SightingUpload::of(sighting);
        let answer: SightingAnswer = self.post("api/sightings", &upload)?;
        Ok(answer.recorded)
    }
}
