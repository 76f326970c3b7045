//! The states a case passes through, from detection to a paid (or appealed, or expired)
//! ticket, following the cold-fine procedure of Circular 73/2024 Art. 24.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Made by intake; waiting for an officer.
    Detected,
    /// An officer has opened it.
    InReview,
    /// An officer changed the plate; it still needs approving.
    PlateCorrected,
    Approved,
    Rejected,
    /// Its events now belong to another case (same plate, violation and camera).
    Merged,
    /// Approved, the registry could not be asked yet; retried.
    OwnerPending,
    OwnerIdentified,
    NoticeSent,
    Paid,
    /// The owner named the driver.
    Appealed,
    /// Unresolved 20 days after the notice: flagged to inspection and registration.
    Flagged,
    /// Past the 1-year limitation (Decree 168/2024 Art. 4) without a resolution.
    Expired,
}

impl CaseState {
    pub const ALL: [CaseState; 13] = [
        CaseState::Detected,
        CaseState::InReview,
        CaseState::PlateCorrected,
        CaseState::Approved,
        CaseState::Rejected,
        CaseState::Merged,
        CaseState::OwnerPending,
        CaseState::OwnerIdentified,
        CaseState::NoticeSent,
        CaseState::Paid,
        CaseState::Appealed,
        CaseState::Flagged,
        CaseState::Expired,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CaseState::Detected => "detected",
            CaseState::InReview => "in_review",
            CaseState::PlateCorrected => "plate_corrected",
            CaseState::Approved => "approved",
            CaseState::Rejected => "rejected",
            CaseState::Merged => "merged",
            CaseState::OwnerPending => "owner_pending",
            CaseState::OwnerIdentified => "owner_identified",
            CaseState::NoticeSent => "notice_sent",
            CaseState::Paid => "paid",
            CaseState::Appealed => "appealed",
            CaseState::Flagged => "flagged",
            CaseState::Expired => "expired",
        }
    }

    /// Waiting for an officer's decision.
    pub const AWAITING_REVIEW: [CaseState; 3] = [
        CaseState::Detected,
        CaseState::InReview,
        CaseState::PlateCorrected,
    ];

    /// A new event of the same vehicle, violation and camera merges into a case in one of
    /// these states; once a notice is out, it starts a new case.
    pub const MERGEABLE: [CaseState; 6] = [
        CaseState::Detected,
        CaseState::InReview,
        CaseState::PlateCorrected,
        CaseState::Approved,
        CaseState::OwnerPending,
        CaseState::OwnerIdentified,
    ];

    /// Before owner identification: the 10-day deadline runs.
    pub const BEFORE_OWNER: [CaseState; 5] = [
        CaseState::Detected,
        CaseState::InReview,
        CaseState::PlateCorrected,
        CaseState::Approved,
        CaseState::OwnerPending,
    ];

    /// Unresolved: these expire when the limitation runs out.
    pub const UNRESOLVED: [CaseState; 8] = [
        CaseState::Detected,
        CaseState::InReview,
        CaseState::PlateCorrected,
        CaseState::Approved,
        CaseState::OwnerPending,
        CaseState::OwnerIdentified,
        CaseState::NoticeSent,
        CaseState::Flagged,
    ];
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for CaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseState::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a case state"))
    }
}

/// Why an officer rejects a detection: a fixed list (so rejections can be counted and the
/// detector improved) plus free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The plate cannot be read in the evidence.
    PlateUnreadable,
    /// The vehicle in the evidence does not match the registered vehicle (cloned plate).
    VehicleMismatch,
    /// The evidence does not show a violation.
    NoViolation,
    /// An emergency or priority vehicle on duty.
    PriorityVehicle,
    /// The signal or camera was faulty.
    EquipmentFault,
    /// Directed by an officer on the spot.
    DirectedByOfficer,
    Other,
}

impl RejectReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::PlateUnreadable => "plate_unreadable",
            RejectReason::VehicleMismatch => "vehicle_mismatch",
            RejectReason::NoViolation => "no_violation",
            RejectReason::PriorityVehicle => "priority_vehicle",
            RejectReason::EquipmentFault => "equipment_fault",
            RejectReason::DirectedByOfficer => "directed_by_officer",
            RejectReason::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for s in CaseState::ALL {
            assert_eq!(s.as_str().parse::<CaseState>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("paid_twice".parse::<CaseState>().is_err());
    }
}
