//! Owner identification: approved cases looked up in the vehicle registry, retried with
//! backoff while it fails, sent back to review when it does not know the plate.

use crate::db::{CaseStore, StoreError, ts};
use crate::lifecycle::CaseState;
use chrono::{DateTime, Utc};

use crate::owner::*;

impl CaseStore {
    /// Look up the owners of approved and pending cases that are due.
    pub async fn identify_owners(
        &self,
        registry: &RegistryClient,
        now: DateTime<Utc>,
    ) -> Result<OwnerRound, StoreError> {
        let due: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, plate, owner_attempts FROM cases
             WHERE state IN ($1, $2) AND (owner_next_attempt_at IS NULL OR owner_next_attempt_at <= $3)
             ORDER BY id LIMIT 200",
        )
        .bind(CaseState::Approved.as_str())
        .bind(CaseState::OwnerPending.as_str())
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        let mut round = OwnerRound::default();
        for (case_id, plate, attempts) in due {
            let Some(plate) = plate else { continue };
            let result = registry.lookup(&plate).await;
            let mut tx = self.begin().await?;
            let from = [CaseState::Approved, CaseState::OwnerPending];
            let outcome = match result {
                Ok(owner) => {
                    let json = serde_json::to_string(&owner).map_err(|e| StoreError::Corrupt {
                        event_id: format!("case {case_id}"),
                        message: e.to_string(),
                    })?;
                    self.transition(
                        &mut tx,
                        case_id,
                        &from,
                        CaseState::OwnerIdentified,
                        "registry",
                        "owner_identified",
                        Some(&owner.owner_name),
                        now,
                    )
                    .await
                    .map(|_| ())?;
                    sqlx::query(
                        "UPDATE cases SET owner_json = $1, owner_error = NULL, owner_next_attempt_at = NULL
                         WHERE id = $2",
                    )
                    .bind(json)
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                    round.identified += 1;
                    Ok(())
                }
                Err(RegistryError::NotFound(_)) => {
                    let msg = format!("vehicle registry has no vehicle with plate {plate}");
                    self.transition(
                        &mut tx,
                        case_id,
                        &from,
                        CaseState::InReview,
                        "registry",
                        "owner_not_found",
                        Some(&msg),
                        now,
                    )
                    .await?;
                    sqlx::query("UPDATE cases SET owner_error = $1 WHERE id = $2")
                        .bind(msg)
                        .bind(case_id)
                        .execute(&mut *tx)
                        .await?;
                    round.returned_to_review += 1;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(reason) = outcome {
                let pending = self
                    .transition(
                        &mut tx,
                        case_id,
                        &[CaseState::Approved],
                        CaseState::OwnerPending,
                        "registry",
                        "owner_pending",
                        Some(&reason),
                        now,
                    )
                    .await;
                match pending {
                    Ok(_) | Err(StoreError::WrongState { .. }) => {}
                    Err(e) => return Err(e),
                }
                sqlx::query(
                    "UPDATE cases SET owner_attempts = owner_attempts + 1, owner_error = $1,
                                      owner_next_attempt_at = $2 WHERE id = $3",
                )
                .bind(&reason)
                .bind(ts(now + retry_delay(attempts)))
                .bind(case_id)
                .execute(&mut *tx)
                .await?;
                round.pending += 1;
            }
            tx.commit().await?;
        }
        Ok(round)
    }
}
