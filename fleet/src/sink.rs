//! A worker's [`EventSink`] on the fleet's JetStream: each file of an event's evidence
//! package goes to the object store, then the event to `VIGIL_EVENTS` with its id as the
//! message id; only once the server has stored it (its acknowledgement) is the worker's
//! own copy of the package deleted. Sightings go to `VIGIL_SIGHTINGS` with their picture.
//!
//! The worker's recorder journals every record on disk before it comes here and retries
//! what fails, in order: NATS down means records wait in the journal, not that they are
//! lost. A second publish of a message id within the stream's duplicate window is dropped
//! by the server; after it, the case service's intake ignores an event it holds.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::context::Publish;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use vigil_core::sighting::SightingUpload;
use vigil_core::{EventSink, Recorded, Sighting, SinkError, ViolationEvent};
use vigil_evidence::package_files;

use crate::bus::{Bus, EVENTS_SUBJECT, SIGHTINGS_SUBJECT};

/// An event as it travels: the event, and the names of its package's files in the
/// object store (under `<event id>/`), manifest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event: ViolationEvent,
    pub evidence: Vec<String>,
}

/// The object holding one file of an event's package.
pub fn evidence_object(event: uuid::Uuid, file: &str) -> String {
    format!("{event}/{file}")
}

pub struct BusSink {
    bus: Bus,
    runtime: Handle,
    /// Where this worker files its packages (its data folder's `evidence`).
    evidence: PathBuf,
    /// How long one publish or upload may take before the record is retried later.
    timeout: Duration,
}

impl BusSink {
    pub fn new(bus: Bus, runtime: Handle, evidence: PathBuf) -> Self {
        Self {
            bus,
            runtime,
            evidence,
            timeout: Duration::from_secs(10),
        }
    }

    /// The package's files, manifest and signature first, then what the manifest lists.
    fn package_files(&self, event: &ViolationEvent) -> Result<(PathBuf, Vec<String>), SinkError> {
        let dir = self.evidence.join(event.event_id.to_string());
        let names = package_files(&dir).map_err(|e| {
            SinkError::Refused(format!("event {}: its package: {e}", event.event_id))
        })?;
        Ok((dir, names))
    }

    async fn upload(
        &self,
        event: uuid::Uuid,
        dir: &std::path::Path,
        names: &[String],
    ) -> Result<(), SinkError> {
        for name in names {
            let path = dir.join(name);
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| SinkError::Refused(format!("{}: {e}", path.display())))?;
            let object = evidence_object(event, name);
            let digest = crate::digest(&bytes);
            // Sent before and stored whole: a retry after a lost answer sends nothing again.
            if let Ok(info) = self.bus.evidence.info(&object).await
                && info.digest.as_deref() == Some(digest.as_str())
            {
                continue;
            }
            let mut reader = bytes.as_slice();
            self.bus
                .evidence
                .put(object.as_str(), &mut reader)
                .await
                .map_err(|e| SinkError::Unavailable(format!("evidence store: {object}: {e}")))?;
        }
        Ok(())
    }

    async fn publish(
        &self,
        subject: &'static str,
        id: String,
        payload: Vec<u8>,
    ) -> Result<(), SinkError> {
        let ack = self
            .bus
            .js
            .send_publish(
                subject,
                Publish::build()
                    .message_id(&id)
                    .payload(Bytes::from(payload)),
            )
            .await
            .map_err(|e| SinkError::Unavailable(format!("{subject}: {e}")))?;
        ack.await
            .map_err(|e| SinkError::Unavailable(format!("{subject}: not stored: {e}")))?;
        Ok(())
    }

    fn within<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        self.runtime.block_on(async {
            tokio::time::timeout(self.timeout, f).await.map_err(|_| {
                SinkError::Unavailable(format!(
                    "{what}: NATS did not answer within {:?}",
                    self.timeout
                ))
            })?
        })
    }
}

impl EventSink for BusSink {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        let (dir, names) = match self.package_files(event) {
            Ok(found) => found,
            // Published before, and its local copy deleted after the server took it:
            // a journal replay after a crash between the two.
            Err(_) if !self.evidence.join(event.event_id.to_string()).exists() => {
                return Ok(Recorded::Queued);
            }
            Err(e) => return Err(e),
        };
        let envelope = EventEnvelope {
            event: event.clone(),
            evidence: names.clone(),
        };
        let payload = serde_json::to_vec(&envelope)
            .map_err(|e| SinkError::Refused(format!("event {}: {e}", event.event_id)))?;
        self.within("evidence", self.upload(event.event_id, &dir, &names))?;
        self.within(
            "event",
            self.publish(EVENTS_SUBJECT, event.event_id.to_string(), payload),
        )?;
        // The stream and the object store hold it now: the worker's copy may go.
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(package = %dir.display(), error = %e, "published, but the local copy of the package could not be removed");
        }
        Ok(Recorded::Queued)
    }

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        let upload = SightingUpload::of(sighting);
        let payload = serde_json::to_vec(&upload)
            .map_err(|e| SinkError::Refused(format!("sighting {}: {e}", sighting.sighting_id)))?;
        self.within(
            "sighting",
            self.publish(SIGHTINGS_SUBJECT, sighting.sighting_id.to_string(), payload),
        )?;
        // Whether it is new only the case service knows; it is queued.
        Ok(true)
    }
}

/// An event's package as the fleet's object store holds it: the manifest, its signature
/// and every file the manifest lists, by name; `None` when the store has no manifest for
/// it. Whoever takes it checks it as any package (signature, hashes, the event's manifest
/// hash) before keeping it: the store is only a way for the bytes to travel.
pub async fn fetch_package(
    bus: &Bus,
    event: uuid::Uuid,
) -> Result<Option<Vec<(String, Vec<u8>)>>, crate::FleetError> {
    use async_nats::jetstream::object_store::GetErrorKind;
    use tokio::io::AsyncReadExt as _;
    async fn read(bus: &Bus, object: &str) -> Result<Option<Vec<u8>>, crate::FleetError> {
        let mut bytes = Vec::new();
        match bus.evidence.get(object).await {
            Ok(mut o) => {
                o.read_to_end(&mut bytes)
                    .await
                    .map_err(|e| crate::FleetError::Nats(format!("evidence {object}: {e}")))?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == GetErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::FleetError::Nats(format!("evidence {object}: {e}"))),
        }
    }
    let Some(manifest) = read(bus, &evidence_object(event, vigil_evidence::MANIFEST)).await? else {
        return Ok(None);
    };
    let listed: vigil_evidence::Manifest = serde_json::from_slice(&manifest).map_err(|e| {
        crate::FleetError::Nats(format!(
            "evidence {event}: its manifest does not parse: {e}"
        ))
    })?;
    let mut files = vec![(vigil_evidence::MANIFEST.to_string(), manifest)];
    for name in std::iter::once(vigil_evidence::SIGNATURE_FILE.to_string())
        .chain(listed.files.into_iter().map(|f| f.name))
    {
        match read(bus, &evidence_object(event, &name)).await? {
            Some(bytes) => files.push((name, bytes)),
            None => {
                return Err(crate::FleetError::Nats(format!(
                    "evidence {event}: {name} is not in the store"
                )));
            }
        }
    }
    Ok(Some(files))
}
