//! The review's transitions: opening, approving, rejecting, correcting a plate (and
//! merging into the case that holds it), recording an appeal. Each a transaction with its
//! history row.

use crate::db::{CaseStore, StoreError, append_history, ts};
use crate::lifecycle::{CaseState, RejectReason};
use chrono::{DateTime, Duration, Utc};

use crate::review::*;

/// An officer's note on a decision: a paragraph or two, not a document.
pub const MAX_NOTE_CHARS: usize = 2_000;

impl CaseStore {
    /// An officer opens a case: detected → in review. Opening one already in review (by
    /// anyone) changes nothing.
    pub async fn open_review(
        &self,
        case_id: i64,
        officer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        match self
            .transition(
                &mut tx,
                case_id,
                &[CaseState::Detected],
                CaseState::InReview,
                officer,
                "review_opened",
                None,
                now,
            )
            .await
        {
            Ok(_) => {
                tx.commit().await?;
                Ok(())
            }
            Err(StoreError::WrongState { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn approve(
        &self,
        case_id: i64,
        officer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let summary = self.summary(case_id).await?;
        if summary.plate.is_none() {
            return Err(StoreError::Invalid(format!(
                "case {case_id} has no plate: correct the plate before approving, or reject it"
            )));
        }
        if summary.plate_uncertain {
            return Err(StoreError::Invalid(format!(
                "case {case_id}'s plate is uncertain: confirm it or pick the right one (correct the plate) before approving, or reject it"
            )));
        }
        let mut tx = self.begin().await?;
        self.transition(
            &mut tx,
            case_id,
            &CaseState::AWAITING_REVIEW,
            CaseState::Approved,
            officer,
            "approved",
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn reject(
        &self,
        case_id: i64,
        officer: &str,
        reason: RejectReason,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = text.trim();
        if text.chars().count() > MAX_NOTE_CHARS {
            return Err(StoreError::Invalid(format!(
                "a rejection's text is at most {MAX_NOTE_CHARS} characters (this one has {})",
                text.chars().count()
            )));
        }
        if reason == RejectReason::Other && text.is_empty() {
            return Err(StoreError::Invalid(
                "a rejection for `other` reasons needs a text saying why".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let detail = if text.is_empty() {
            reason.as_str().to_string()
        } else {
            format!("{}: {text}", reason.as_str())
        };
        self.transition(
            &mut tx,
            case_id,
            &CaseState::AWAITING_REVIEW,
            CaseState::Rejected,
            officer,
            "rejected",
            Some(&detail),
            now,
        )
        .await?;
        sqlx::query("UPDATE cases SET reject_reason = $1, reject_text = $2 WHERE id = $3")
            .bind(reason.as_str())
            .bind((!text.is_empty()).then(|| text.to_string()))
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Correct a case's plate (or confirm an uncertain one by giving it again). If another open case already holds the same vehicle's
    /// violation at this camera within the dedup window, this case merges into it (its
    /// events and evidence move there); otherwise it waits for approval with the new plate.
    pub async fn correct_plate(
        &self,
        case_id: i64,
        officer: &str,
        typed: &str,
        now: DateTime<Utc>,
        dedup_window: Duration,
    ) -> Result<Corrected, StoreError> {
        let plate = normalise_plate(typed)?;
        let summary = self.summary(case_id).await?;
        let mut tx = self.begin().await?;
        self.lock_key(
            &mut tx,
            &format!("dedup|{}|{}|{plate}", summary.camera_id, summary.violation),
        )
        .await?;
        let detail = format!(
            "plate {} → {plate}",
            summary.plate.as_deref().unwrap_or("(none)")
        );
        let previous = self
            .transition(
                &mut tx,
                case_id,
                &CaseState::AWAITING_REVIEW,
                CaseState::PlateCorrected,
                officer,
                "plate_corrected",
                Some(&detail),
                now,
            )
            .await?;
        let (first, last): (String, String) =
            sqlx::query_as("SELECT occurred_at, last_occurred_at FROM cases WHERE id = $1")
                .bind(case_id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE cases SET original_plate = COALESCE(original_plate, plate), plate = $1,
                              plate_key = $2, plate_uncertain = 0 WHERE id = $3",
        )
        .bind(&plate)
        .bind(crate::db::fold_plate(&plate))
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        let first = crate::db::parse_ts("case", &first)?;
        let last = crate::db::parse_ts("case", &last)?;
        let target: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM cases
             WHERE camera_id = $1 AND violation = $2 AND plate = $3 AND id <> $4
               AND plate_uncertain = 0 AND state IN ({})
               AND last_occurred_at >= $5 AND occurred_at <= $6
             ORDER BY id LIMIT 1",
            crate::db::in_list(&CaseState::MERGEABLE)
        ))
        .bind(&summary.camera_id)
        .bind(summary.violation.as_str())
        .bind(&plate)
        .bind(case_id)
        .bind(ts(first - dedup_window))
        .bind(ts(last + dedup_window))
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match target {
            None => Corrected::Corrected(case_id),
            Some(into) => {
                sqlx::query("UPDATE case_events SET case_id = $1 WHERE case_id = $2")
                    .bind(into)
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                let (t_first, t_last): (String, String) =
                    sqlx::query_as("SELECT occurred_at, last_occurred_at FROM cases WHERE id = $1")
                        .bind(into)
                        .fetch_one(&mut *tx)
                        .await?;
                let t_first = crate::db::parse_ts("case", &t_first)?.min(first);
                let t_last = crate::db::parse_ts("case", &t_last)?.max(last);
                sqlx::query(
                    "UPDATE cases SET occurred_at = $1, last_occurred_at = $2, updated_at = $3
                     WHERE id = $4",
                )
                .bind(ts(t_first))
                .bind(ts(t_last))
                .bind(ts(now))
                .bind(into)
                .execute(&mut *tx)
                .await?;
                let into_state: String =
                    sqlx::query_scalar("SELECT state FROM cases WHERE id = $1")
                        .bind(into)
                        .fetch_one(&mut *tx)
                        .await?;
                append_history(
                    &mut tx,
                    into,
                    now,
                    officer,
                    "case_merged",
                    Some(&into_state),
                    &into_state,
                    Some(&format!(
                        "case {case_id} merged in after its plate was corrected"
                    )),
                )
                .await?;
                self.transition(
                    &mut tx,
                    case_id,
                    &[CaseState::PlateCorrected],
                    CaseState::Merged,
                    officer,
                    "merged",
                    Some(&format!("into case {into}")),
                    now,
                )
                .await?;
                sqlx::query("UPDATE cases SET merged_into = $1 WHERE id = $2")
                    .bind(into)
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
                Corrected::MergedInto(into)
            }
        };
        tx.commit().await?;
        tracing::info!(case_id, from = %previous, ?outcome, "plate corrected");
        Ok(outcome)
    }
}
