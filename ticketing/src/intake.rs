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
        tokio::task::spawn_blocking(move || evidence.accept(&checked, &trusted))
            .await
            .map_err(|e| StoreError::Invalid(format!("the evidence check failed: {e}")))?
            .map_err(|e| match e {
                EvidenceError::Io { .. } => StoreError::Unavailable(e.to_string()),
                _ => StoreError::Invalid(e.to_string()),
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

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        self.runtime
            .block_on(self.intake.store.record_sighting(sighting))
            .map_err(sink_error)
    }
}

/// What the store says of a record it did not take: bad data is refused for good; a
/// database that is down, locked or slow may take it later.
pub fn sink_error(e: StoreError) -> SinkError {
    match e {
        StoreError::Invalid(m) => SinkError::Refused(m),
        other => SinkError::Unavailable(other.to_string()),
    }
}
