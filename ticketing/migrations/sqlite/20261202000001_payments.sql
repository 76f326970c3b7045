-- Payments as the payment provider reported them in signed callbacks, one row per
-- provider transaction: a second delivery of the same callback finds its row and records
-- nothing new. A counter payment recorded by an officer is a row too.
CREATE TABLE payments (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_code    TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    amount_vnd     INTEGER NOT NULL,
    paid_at        TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    source         TEXT NOT NULL
);
CREATE INDEX payments_notice ON payments (notice_code);

-- What citizens typed as proof of a payment: a claim for an officer to check, which
-- changes no case.
CREATE TABLE payment_claims (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    notice_code TEXT NOT NULL,
    reference   TEXT NOT NULL,
    claimed_at  TEXT NOT NULL
);
CREATE INDEX payment_claims_notice ON payment_claims (notice_code);
