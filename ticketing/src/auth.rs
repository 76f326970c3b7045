//! Users, roles, sessions and API tokens. Passwords are hashed with argon2id; session and
//! API tokens are random 256-bit values of which only the SHA-256 is stored, so a copy of
//! the database does not log anyone in.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::StoreError;

/// A session lasts one working shift.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reviews detections.
    Officer,
    /// Searches plate reads.
    Investigator,
    /// Runs cameras and batch jobs; pipeline workers send events with an operator token.
    Operator,
    /// Manages users and cameras.
    Admin,
    /// Another agency reading the API.
    Agency,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Officer,
        Role::Investigator,
        Role::Operator,
        Role::Admin,
        Role::Agency,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Investigator => "investigator",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Agency => "agency",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a role (officer, investigator, operator, admin, agency)")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// A logged-in browser: its user and the token its state-changing requests must echo.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub(crate) fn random_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The longest user name: a longer one is refused before anything is looked up or logged.
pub const MAX_USERNAME: usize = 64;
/// The longest password: hashing is deliberately slow, and its cost grows with the input.
pub const MAX_PASSWORD: usize = 1024;

/// Why `username` cannot be a user name, if it cannot.
pub fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty()
        || username.chars().count() > MAX_USERNAME
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(format!(
            "user name `{}`: 1–{MAX_USERNAME} letters, digits, `.`, `_`, `-` or `@`",
            crate::sightings::shown(username)
        ));
    }
    Ok(())
}

/// Why `password` cannot be a new password, if it cannot: at least 12 characters that
/// are not spaces (twelve spaces are no password), and at most [`MAX_PASSWORD`].
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() > MAX_PASSWORD {
        return Err(format!("a password has at most {MAX_PASSWORD} characters"));
    }
    if password.chars().filter(|c| !c.is_whitespace()).count() < 12 {
        return Err("a password needs at least 12 characters other than spaces".into());
    }
    Ok(())
}

/// An API token as an admin sees it (never the token itself: only its hash is kept).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// At most as many password hashes at once as there are cores, each on a blocking
/// thread: a burst of logins waits its turn instead of stalling every other request.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    })
}

/// Run password hashing work off the request threads, a bounded number at a time.
pub(crate) async fn off_the_request_threads<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| StoreError::Invalid(format!("password hashing stopped: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Invalid(format!("password hashing failed: {e}")))
}

pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a salt: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("password hashing failed: {e}")))
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub(crate) fn user_from(id: i64, username: String, role: String) -> Result<User, StoreError> {
    Ok(User {
        role: role.parse().map_err(|message| StoreError::Corrupt {
            event_id: format!("user {username}"),
            message,
        })?,
        id,
        username,
    })
}
