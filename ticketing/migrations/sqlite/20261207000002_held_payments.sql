-- Money the payment provider reports taken that no notice could take as it stood (a case
-- appealed since the order, an amount that is not the notice's, a notice already paid):
-- kept, one row per provider transaction, for the handling unit to refund or apply.
-- A signed callback is never answered with a refusal that loses the money.
CREATE TABLE held_payments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_code    TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    amount_vnd     INTEGER NOT NULL,
    paid_at        TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    reason         TEXT NOT NULL
);
CREATE INDEX held_payments_notice ON held_payments (notice_code);
