//! The legal deadlines: what is overdue, and the sweep that flags and expires cases.

use crate::db::{CaseStore, StoreError, in_list, parse_ts, ts};
use crate::lifecycle::CaseState;
use chrono::{DateTime, Utc};

use crate::deadlines::*;

impl CaseStore {
    /// Cases past a deadline at `now`, the most overdue first.
    pub async fn overdue(&self, now: DateTime<Utc>) -> Result<Vec<Overdue>, StoreError> {
        let mut out = Vec::new();
        let rows: Vec<(i64, Option<String>, String, String)> = sqlx::query_as(&format!(
            "SELECT id, plate, state, created_at FROM cases
             WHERE state IN ({}) AND created_at <= $1 ORDER BY created_at, id",
            in_list(&CaseState::BEFORE_OWNER)
        ))
        .bind(ts(now - OWNER_IDENTIFICATION))
        .fetch_all(&self.pool)
        .await?;
        for (case_id, plate, state, created) in rows {
            out.push(Overdue {
                due_at: parse_ts(&format!("case {case_id}"), &created)? + OWNER_IDENTIFICATION,
                deadline: "owner_identification".into(),
                case_id,
                plate,
                state,
            });
        }
        let rows: Vec<(i64, Option<String>, String, String)> = sqlx::query_as(
            "SELECT c.id, c.plate, c.state, n.flag_due_at FROM cases c
             JOIN notices n ON n.id = c.notice_id
             WHERE c.state IN ($1, $2) AND n.flag_due_at <= $3 ORDER BY n.flag_due_at, c.id",
        )
        .bind(CaseState::NoticeSent.as_str())
        .bind(CaseState::Flagged.as_str())
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        for (case_id, plate, state, due) in rows {
            out.push(Overdue {
                due_at: parse_ts(&format!("case {case_id}"), &due)?,
                deadline: "notice_unresolved".into(),
                case_id,
                plate,
                state,
            });
        }
        out.sort_by_key(|o| (o.due_at, o.case_id));
        Ok(out)
    }

    /// Flag notices unresolved for 20 days; expire what the limitation has run out on.
    pub async fn sweep_deadlines(&self, now: DateTime<Utc>) -> Result<Sweep, StoreError> {
        let mut sweep = Sweep::default();
        let to_flag: Vec<(i64, String)> = sqlx::query_as(
            "SELECT c.id, n.code FROM cases c JOIN notices n ON n.id = c.notice_id
             WHERE c.state = $1 AND n.flag_due_at <= $2 ORDER BY c.id",
        )
        .bind(CaseState::NoticeSent.as_str())
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        for (case_id, code) in to_flag {
            let mut tx = self.begin().await?;
            match self
                .transition(
                    &mut tx,
                    case_id,
                    &[CaseState::NoticeSent],
                    CaseState::Flagged,
                    "system",
                    "flagged",
                    Some(&format!("notice {code} unresolved after 20 days")),
                    now,
                )
                .await
            {
                Ok(_) => {
                    tx.commit().await?;
                    sweep.flagged += 1;
                }
                // Paid or appealed in the meantime.
                Err(StoreError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let to_expire: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM cases WHERE state IN ({}) AND occurred_at <= $1 ORDER BY id",
            in_list(&CaseState::UNRESOLVED)
        ))
        .bind(ts(now - LIMITATION))
        .fetch_all(&self.pool)
        .await?;
        for case_id in to_expire {
            let mut tx = self.begin().await?;
            match self
                .transition(
                    &mut tx,
                    case_id,
                    &CaseState::UNRESOLVED,
                    CaseState::Expired,
                    "system",
                    "expired",
                    Some("one-year limitation ran out"),
                    now,
                )
                .await
            {
                Ok(_) => {
                    tx.commit().await?;
                    sweep.expired += 1;
                }
                Err(StoreError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sweep)
    }
}
