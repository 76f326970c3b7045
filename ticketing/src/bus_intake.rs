//! The case service taking the fleet's events and sightings from NATS JetStream
//! ([`vigil_fleet::intake`]): an event's package files, fetched from the fleet's object
//! store, are filed as an upload would be, then the event goes through the same
//! [`Intake`] as one posted over HTTP; sightings are recorded a batch per transaction.

use vigil_core::DataDir;
use vigil_core::sighting::SightingUpload;
use vigil_core::{SinkError, ViolationEvent};
use vigil_fleet::intake::CaseIntake;

use crate::evidence::EvidenceError;
use crate::intake::{Intake, sink_error};
use crate::sightings::{PictureError, keep_picture};

pub struct BusIntake {
    pub intake: Intake,
    /// Where sightings' pictures are kept.
    pub data: DataDir,
}

impl CaseIntake for BusIntake {
    async fn record_event(
        &self,
        event: ViolationEvent,
        evidence: Vec<(String, Vec<u8>)>,
    ) -> Result<(), SinkError> {
        let store = self.intake.evidence.clone();
        let id = event.event_id;
        tokio::task::spawn_blocking(move || {
            for (name, bytes) in evidence {
                store.receive(id, &name, &bytes)?;
            }
            Ok::<_, EvidenceError>(())
        })
        .await
        .map_err(|e| SinkError::Unavailable(format!("filing the evidence: {e}")))?
        .map_err(|e| match e {
            EvidenceError::Io { .. } | EvidenceError::TooManyWaiting => {
                SinkError::Unavailable(e.to_string())
            }
            other => SinkError::Refused(format!("event {id}: {other}")),
        })?;
        let recorded = self.intake.record(&event).await.map_err(sink_error)?;
        tracing::info!(event = %id, camera = %event.camera_id, outcome = recorded.outcome(), case = ?recorded.case_id(), "event from the fleet recorded");
        Ok(())
    }

    async fn record_sightings(&self, uploads: Vec<SightingUpload>) -> Result<(), SinkError> {
        let mut all = Vec::with_capacity(uploads.len());
        for upload in uploads {
            let mut sighting = upload.sighting;
            sighting.check().map_err(|e| {
                SinkError::Refused(format!("sighting {}: {e}", sighting.sighting_id))
            })?;
            sighting.thumbnail = match upload.picture_jpeg_base64 {
                Some(b64) => match keep_picture(&self.data, &sighting, &b64).await {
                    Ok(path) => Some(path),
                    // The read is worth keeping without its picture.
                    Err(PictureError::Invalid(why)) => {
                        tracing::warn!(sighting = %sighting.sighting_id, error = %why, "picture dropped");
                        None
                    }
                    Err(PictureError::Io(why)) => return Err(SinkError::Unavailable(why)),
                },
                None => None,
            };
            all.push(sighting);
        }
        self.intake
            .store
            .record_sightings(&all)
            .await
            .map(|_| ())
            .map_err(sink_error)
    }
}
