//! A case store in memory, for tests of what the pipeline hands over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use vigil_core::{EventSink, Recorded, Sighting, SinkError, ViolationEvent};

/// Keeps what it takes; refuses its first `refusals` events as a locked database would.
#[derive(Default)]
pub struct MemorySink {
    events: Mutex<Vec<ViolationEvent>>,
    sightings: Mutex<Vec<Sighting>>,
    refusals: AtomicUsize,
}

impl MemorySink {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    pub fn refusing_first(refusals: usize) -> Arc<Self> {
        Arc::new(Self {
            refusals: AtomicUsize::new(refusals),
            ..Self::default()
        })
    }

    pub fn events(&self) -> Vec<ViolationEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn sightings(&self) -> Vec<Sighting> {
        self.sightings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl EventSink for MemorySink {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        let refuse = self
            .refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            return Err(SinkError::Unavailable("database is locked".into()));
        }
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = events.iter().position(|e| e.event_id == event.event_id) {
            return Ok(Recorded::Duplicate(i as i64 + 1));
        }
        events.push(event.clone());
        Ok(Recorded::New(events.len() as i64))
    }

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        let mut all = self.sightings.lock().unwrap_or_else(|p| p.into_inner());
        if all.iter().any(|s| s.sighting_id == sighting.sighting_id) {
            return Ok(false);
        }
        all.push(sighting.clone());
        Ok(true)
    }
}
