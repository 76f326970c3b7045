//! Payments: a notice is paid by a transaction the payment provider reported (or by an
//! officer at the counter); a citizen's typed reference is kept as a claim only.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::db::{CaseStore, StoreError, parse_ts, ts};
use crate::lifecycle::CaseState;
use crate::notice::{Notice, PaymentClaim};
use crate::payment::PaymentCallback;

/// What a provider's callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The notice is paid now.
    Recorded,
    /// This transaction had already paid this notice: nothing changed.
    Duplicate,
    /// The provider reports a payment that did not complete (failed, cancelled).
    NotPaid,
    /// The money was taken but the notice could not take it as it stands (a case
    /// appealed since the order, another amount, a notice already paid): it is held for
    /// the handling unit to refund or apply ([`CaseStore::held_payments`]), never lost.
    Held,
}

/// A provider payment no notice could take: for the handling unit to refund or apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HeldPayment {
    pub notice_code: String,
    pub transaction_id: String,
    pub amount_vnd: u64,
    pub paid_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Why the notice could not take it.
    pub reason: String,
}

/// Claims kept per notice: enough for a citizen's retries, bounded against a flood.
pub const MAX_CLAIMS_PER_NOTICE: i64 = 10;

impl CaseStore {
    /// Record the payment a provider reported. The notice must exist; the provider has
    /// taken the money, so a payment the notice cannot take as it stands (another amount
    /// than it asks now, no case left to pay, already paid by another transaction) is
    /// held for the handling unit rather than refused and lost.
    pub async fn record_provider_payment(
        &self,
        callback: &PaymentCallback,
        now: DateTime<Utc>,
    ) -> Result<PaymentOutcome, StoreError> {
        let notice = self.notice(&callback.order_id, None).await?;
        if callback.status != "paid" {
            return Ok(PaymentOutcome::NotPaid);
        }
        if self.is_held(&callback.transaction_id).await? {
            return Ok(PaymentOutcome::Duplicate);
        }
        let due = notice.amount_due_vnd;
        let problem = if notice.payable_case_ids.is_empty() && notice.payment_reference.is_none() {
            Some(format!(
                "no case of notice {} can be paid now (appealed or closed)",
                notice.code
            ))
        } else if callback.amount_vnd != due && notice.payment_reference.is_none() {
            Some(format!(
                "transaction {} paid {} VND; notice {} asks {due} VND",
                callback.transaction_id, callback.amount_vnd, notice.code
            ))
        } else {
            None
        };
        let settled = match problem {
            Some(reason) => Err(StoreError::Conflict(reason)),
            None => {
                self.settle(
                    &notice,
                    &callback.transaction_id,
                    callback.amount_vnd,
                    callback.paid_at,
                    "payment-provider",
                    now,
                )
                .await
            }
        };
        let reason = match settled {
            Err(StoreError::Conflict(reason)) => reason,
            // A case moved (appealed) between reading the notice and paying it.
            Err(e @ StoreError::WrongState { .. }) => e.to_string(),
            other => return other,
        };
        tracing::warn!(code = %notice.code, transaction = %callback.transaction_id, %reason, "provider payment held");
        self.hold_payment(callback, &reason, now).await?;
        Ok(PaymentOutcome::Held)
    }

    async fn is_held(&self, transaction_id: &str) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM held_payments WHERE transaction_id = $1")
                .bind(transaction_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Keep a provider payment no notice could take (once per transaction).
    async fn hold_payment(
        &self,
        callback: &PaymentCallback,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO held_payments (notice_code, transaction_id, amount_vnd, paid_at,
                 received_at, reason)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (transaction_id) DO NOTHING",
        )
        .bind(&callback.order_id)
        .bind(&callback.transaction_id)
        .bind(i64::try_from(callback.amount_vnd).unwrap_or(i64::MAX))
        .bind(ts(callback.paid_at))
        .bind(ts(now))
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Provider payments held because no notice could take them, oldest first.
    pub async fn held_payments(&self) -> Result<Vec<HeldPayment>, StoreError> {
        let rows = sqlx::query(
            "SELECT notice_code, transaction_id, amount_vnd, paid_at, received_at, reason
             FROM held_payments ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let what = format!(
                    "held payment {}",
                    row.try_get::<String, _>("transaction_id")?
                );
                Ok(HeldPayment {
                    notice_code: row.try_get("notice_code")?,
                    transaction_id: row.try_get("transaction_id")?,
                    amount_vnd: row.try_get::<i64, _>("amount_vnd")?.max(0) as u64,
                    paid_at: parse_ts(&what, &row.try_get::<String, _>("paid_at")?)?,
                    received_at: parse_ts(&what, &row.try_get::<String, _>("received_at")?)?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Record a payment made at the counter, under the receipt number `reference`.
    pub async fn record_payment(
        &self,
        code: &str,
        plate: &str,
        reference: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Notice, StoreError> {
        let reference = check_reference(reference)?;
        let notice = self.notice(code, Some(plate)).await?;
        if notice.payable_case_ids.is_empty() && notice.payment_reference.is_none() {
            return Err(StoreError::Conflict(format!(
                "no case of notice {} can be paid now: each is appealed or closed",
                notice.code
            )));
        }
        let due = notice.amount_due_vnd;
        self.settle(
            &notice,
            &format!("counter:{reference}"),
            due,
            now,
            actor,
            now,
        )
        .await?;
        self.notice(&notice.code, None).await
    }

    async fn settle(
        &self,
        notice: &Notice,
        transaction_id: &str,
        amount_vnd: u64,
        paid_at: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PaymentOutcome, StoreError> {
        let mut tx = self.begin().await?;
        self.lock_key(&mut tx, &format!("notice|{}", notice.code))
            .await?;
        let earlier: Option<String> =
            sqlx::query_scalar("SELECT notice_code FROM payments WHERE transaction_id = $1")
                .bind(transaction_id)
                .fetch_optional(&mut *tx)
                .await?;
        match earlier {
            Some(code) if code == notice.code => return Ok(PaymentOutcome::Duplicate),
            Some(code) => {
                return Err(StoreError::Conflict(format!(
                    "transaction {transaction_id} already paid notice {code}"
                )));
            }
            None => {}
        }
        let paid_by: Option<String> =
            sqlx::query_scalar("SELECT payment_reference FROM notices WHERE code = $1")
                .bind(&notice.code)
                .fetch_optional(&mut *tx)
                .await?
                .flatten();
        if let Some(paid_by) = paid_by {
            // A second payment of one notice is money to refund, not a state to change.
            return Err(StoreError::Conflict(format!(
                "notice {} is already paid by {paid_by}; transaction {transaction_id} is a second payment",
                notice.code
            )));
        }
        sqlx::query(
            "INSERT INTO payments (notice_code, transaction_id, amount_vnd, paid_at, received_at, source)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&notice.code)
        .bind(transaction_id)
        .bind(i64::try_from(amount_vnd).unwrap_or(i64::MAX))
        .bind(ts(paid_at))
        .bind(ts(now))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        // Only the cases payable when the notice was read; one appealed in between makes
        // this fail (WrongState), and the caller holds the money.
        for case_id in &notice.payable_case_ids {
            self.transition(
                &mut tx,
                *case_id,
                &[CaseState::NoticeSent, CaseState::Flagged],
                CaseState::Paid,
                actor,
                "paid",
                Some(&format!("payment {transaction_id}, {amount_vnd} VND")),
                now,
            )
            .await?;
        }
        sqlx::query("UPDATE notices SET resolved_at = $1, payment_reference = $2 WHERE code = $3")
            .bind(ts(now))
            .bind(transaction_id)
            .bind(&notice.code)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(code = %notice.code, %transaction_id, amount_vnd, "notice paid");
        Ok(PaymentOutcome::Recorded)
    }

    /// Keep what a citizen typed as proof of payment, for an officer to check against the
    /// provider's or the bank's records. No case changes.
    pub async fn record_payment_claim(
        &self,
        code: &str,
        plate: &str,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Notice, StoreError> {
        let reference = check_reference(reference)?;
        let notice = self.notice(code, Some(plate)).await?;
        let mut tx = self.begin().await?;
        self.lock_key(&mut tx, &format!("notice|{}", notice.code))
            .await?;
        let held: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM payment_claims WHERE notice_code = $1")
                .bind(&notice.code)
                .fetch_one(&mut *tx)
                .await?;
        if held >= MAX_CLAIMS_PER_NOTICE {
            return Err(StoreError::Invalid(format!(
                "notice {} already holds {held} payment claims; an officer will check them",
                notice.code
            )));
        }
        sqlx::query(
            "INSERT INTO payment_claims (notice_code, reference, claimed_at) VALUES ($1, $2, $3)",
        )
        .bind(&notice.code)
        .bind(reference)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notice(&notice.code, None).await
    }

    pub(crate) async fn payment_claims(&self, code: &str) -> Result<Vec<PaymentClaim>, StoreError> {
        let rows = sqlx::query(
            "SELECT reference, claimed_at FROM payment_claims WHERE notice_code = $1 ORDER BY id",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let at: String = row.try_get("claimed_at")?;
                Ok(PaymentClaim {
                    reference: row.try_get("reference")?,
                    claimed_at: parse_ts(&format!("notice {code}"), &at)?,
                })
            })
            .collect()
    }
}

fn check_reference(reference: &str) -> Result<&str, StoreError> {
    let reference = reference.trim();
    if reference.is_empty()
        || reference.chars().count() > 100
        || reference.chars().any(char::is_control)
    {
        return Err(StoreError::Invalid(
            "a payment reference is 1 to 100 characters, none of them control characters".into(),
        ));
    }
    Ok(reference)
}
