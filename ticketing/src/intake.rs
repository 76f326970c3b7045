//! Intake: a violation event becomes a case with the fine the law set on its date, once
//! its fields are in form and its evidence package is filed in the service's store and
//! checks ([`crate::evidence`]).

use std::sync::Arc;

use chrono::Duration;

use crate::db::{CaseStore, Recorded, StoreError};
use crate::evidence::{EvidenceError, EvidenceStore};
use crate::fines::{Fine, FineSchedules, VehicleCategory};
use vigil_core::clock::{Clock, SystemClock};
use vigil_core::event::ViolationEvent;
use vigil_core::{EventSink, Sighting, SinkError};

/// How close in time two events of one plate, violation and camera must be to be one
/// case: a vehicle that stops over the line and moves on is seen crossing more than once.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::minutes(5);

#[derive(Clone)]
pub struct Intake {
    pub store: CaseStore,
    pub fines: Arc<FineSchedules>,
    pub dedup_window: Duration,
    /// Plates read with less confidence go to review as uncertain (see
    /// [`crate::db::DEFAULT_PLATE_CERTAIN_AT`]).
    pub plate_certain_at: f32,
    pub clock: Arc<dyn Clock>,
    pub evidence: EvidenceStore,
}

impl Intake {
    pub fn new(store: CaseStore, fines: FineSchedules, evidence: EvidenceStore) -> Self {
        Self {
            store,
            evidence,
            fines: Arc::new(fines),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            plate_certain_at: crate::db::DEFAULT_PLATE_CERTAIN_AT,
            clock: Arc::new(SystemClock),
        }
    }

    /// The fine for an event, if the schedule covers its violation and vehicle. A case
    /// with no fine still goes to review: an officer decides, nothing is dropped.
    pub fn fine_for(&self, event: &ViolationEvent) -> Option<Fine> {
        let Some(category) = VehicleCategory::from_class(&event.vehicle_class) else {
            tracing::warn!(event = %event.event_id, class = %event.vehicle_class, "no fine category for this vehicle class");
            return None;
        };
        match self
            .fines
            .fine(event.violation.as_str(), category, event.occurred_at)
        {
            Ok(fine) => Some(fine),
            Err(e) => {
                tracing::warn!(event = %event.event_id, error = %e, "no fine for this case");
                None
            }
        }
    }

    pub async fn record(&self, event: &ViolationEvent) -> Result<Recorded, StoreError> {
        event
            .check()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let trusted = self.store.trusted_keys().await?;
        let (evidence, checked) = (self.evidence.clone(), event.clone());
        // The problems found name files by where the service keeps them: the client is
        // told which file of its package, not where this server keeps it.
        let root = self.evidence.root().display().to_string();
        tokio::task::spawn_blocking(move || evidence.accept(&checked, &trusted))
            .await
            .map_err(|e| StoreError::Invalid(format!("the evidence check failed: {e}")))?
            .map_err(|e| match e {
                EvidenceError::Io { .. } => StoreError::Unavailable(e.to_string()),
                _ => StoreError::Invalid(without_server_paths(&e.to_string(), &root)),
            })?;
        let fine = self.fine_for(event);
        self.store
            .record_with(
                event,
                fine.as_ref(),
                self.clock.now(),
                self.dedup_window,
                self.plate_certain_at,
            )
            .await
    }
}

/// The case service in-process, as the pipeline's [`EventSink`]: a batch run or a live
/// worker on the machine that holds the database. Calls block their (pipeline) thread on
/// the service's runtime; they must not be made from inside it.
pub struct IntakeSink {
    pub intake: Intake,
    pub runtime: tokio::runtime::Handle,
}

impl EventSink for IntakeSink {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        self.runtime
            .block_on(self.intake.record(event))
            .map_err(sink_error)
    }

    /// The pipeline beside the database read this sighting from `source`: a recording
    /// (it has an offset) is a file this process decoded here, so its video can be served.
    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        let recording = std::path::Path::new(&sighting.source);
        let recording = (sighting.video_offset_ms.is_some() && recording.is_file())
            .then(|| std::path::absolute(recording).unwrap_or_else(|_| recording.to_owned()));
        self.runtime
            .block_on(
                self.intake
                    .store
                    .record_sighting_from(sighting, recording.as_deref()),
            )
            .map_err(sink_error)
    }
}

/// `text` with every mention of the folder `root` (and of the folders below it that
/// uploads pass through) cut down to the package's own names.
fn without_server_paths(text: &str, root: &str) -> String {
    if root.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(root) {
        out.push_str(&rest[..at]);
        rest = &rest[at + root.len()..];
        // Skip `/<folder>/.../` up to the file's own name.
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, ':' | ';' | ',' | ')' | '`' | '\''))
            .unwrap_or(rest.len());
        let path = &rest[..end];
        out.push_str(path.rsplit('/').next().unwrap_or(""));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// What the store says of a record it did not take: bad data is refused for good; a
/// database that is down, locked or slow may take it later.
pub fn sink_error(e: StoreError) -> SinkError {
    match e {
        StoreError::Invalid(m) => SinkError::Refused(m),
        other => SinkError::Unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::without_server_paths;

    #[test]
    fn a_refusal_names_the_package_file_not_where_the_server_keeps_it() {
        let root = "/srv/vigil/data/evidence";
        let text = "plate.jpg: /srv/vigil/data/evidence/.filing/0000-1/plate.jpg is a link; \
                    /srv/vigil/data/evidence/.filing/0000-1: unreadable";
        let shown = without_server_paths(text, root);
        assert!(!shown.contains("/srv"), "{shown}");
        assert_eq!(shown, "plate.jpg: plate.jpg is a link; 0000-1: unreadable");
        assert_eq!(without_server_paths("no path here", root), "no path here");
        assert_eq!(without_server_paths("x", ""), "x");
    }
}
