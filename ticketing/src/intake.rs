//! Intake: a violation event becomes a case with the fine the law set on its date.

use std::sync::Arc;

use chrono::Duration;

use crate::clock::{Clock, SystemClock};
use crate::event::ViolationEvent;
use crate::fines::{Fine, FineSchedules, VehicleCategory};
use crate::store::{CaseStore, Recorded, StoreError};

/// How close in time two events of one plate, violation and camera must be to be one
/// case: a vehicle that stops over the line and moves on is seen crossing more than once.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::minutes(5);

#[derive(Clone)]
pub struct Intake {
    pub store: CaseStore,
    pub fines: Arc<FineSchedules>,
    pub dedup_window: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Intake {
    pub fn new(store: CaseStore, fines: FineSchedules) -> Self {
        Self {
            store,
            fines: Arc::new(fines),
            dedup_window: DEFAULT_DEDUP_WINDOW,
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
        let fine = self.fine_for(event);
        self.store
            .record(event, fine.as_ref(), self.clock.now(), self.dedup_window)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample_event;

    #[tokio::test]
    async fn a_bus_running_the_red_is_fined_as_a_car_and_kept_with_the_case() {
        for (backend, store, _dir) in crate::testing::both().await {
            eprintln!("backend {backend}");
            fined_and_kept(store).await;
        }
    }

    async fn fined_and_kept(store: CaseStore) {
        let intake = Intake::new(
            store,
            FineSchedules::load_dir(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"),
            )
            .unwrap(),
        );
        intake.record(&sample_event(1)).await.unwrap();
        let mut unknown = sample_event(2);
        unknown.vehicle_class = "cart".into();
        intake.record(&unknown).await.unwrap();
        let cases = intake.store.list().await.unwrap();
        let fine = cases[0].fine.as_ref().expect("fined");
        assert_eq!(
            (
                fine.min_vnd,
                fine.max_vnd,
                fine.points,
                fine.article.as_str()
            ),
            (18_000_000, 20_000_000, 4, "6.9.b")
        );
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].fine, None);
    }
}
