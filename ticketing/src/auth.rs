//! Users, roles, sessions and API tokens. Passwords are hashed with argon2id; session and
//! API tokens are random 256-bit values of which only the SHA-256 is stored, so a copy of
//! the database does not log anyone in.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
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

/// Password hashes computed at once: as many as there are cores, at most four.
fn hashing_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4)
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The threads that hash passwords: a few of their own that live as long as the process.
/// Each argon2 hash takes 19 MiB; on tokio's blocking threads, which come and go by the
/// hundred, each new thread's allocator arena kept its own 19 MiB after the hash, and 300
/// failed logins left the server at 1.3 GB (the second review). On a fixed few threads
/// the memory is the same few blocks, reused.
fn hashing_queue() -> &'static std::sync::mpsc::SyncSender<HashJob> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::SyncSender<HashJob>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let threads = hashing_threads();
        let (send, receive) = std::sync::mpsc::sync_channel::<HashJob>(threads);
        let receive = std::sync::Arc::new(std::sync::Mutex::new(receive));
        for n in 0..threads {
            let receive = receive.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vigil-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = match receive.lock() {
                            Ok(r) => r.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        send
    })
}

/// At most [`hashing_threads`] hashes wait or run at once: a burst of logins waits its
/// turn here instead of stalling every other request or growing a queue.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(hashing_threads()))
}

/// Run password hashing work on the hashing threads, a bounded number at a time.
pub(crate) async fn off_the_request_threads<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| StoreError::Invalid(format!("password hashing stopped: {e}")))?;
    let (done, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = done.send(work());
    });
    // With a slot held, fewer jobs are queued or running than the queue holds.
    hashing_queue()
        .try_send(job)
        .map_err(|e| StoreError::Invalid(format!("password hashing stopped: {e}")))?;
    result
        .await
        .map_err(|_| StoreError::Invalid("password hashing failed".into()))
}

thread_local! {
    /// This thread's argon2 memory, kept and reused from hash to hash. Allocated for each
    /// hash (as `Argon2::hash_password` does), the 19 MiB were left behind in the
    /// allocator's arenas: 300 failed logins took `vigil serve` from 22 to 442 MiB even on
    /// two hashing threads (`scripts/bench logins`).
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The most memory a stored hash may ask to be checked with (64 MiB): more is not a hash
/// this service made, and would be memory for the asking.
const MAX_ARGON2_KIB: u32 = 64 * 1024;

/// Argon2 of `password` and `salt` into `out`, in this thread's reused memory.
fn argon2_into(
    argon: &Argon2,
    params: &argon2::Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let need = params.block_count();
        if memory.len() < need {
            memory.resize(need, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..need])
    })
}

pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let failed = |e: String| StoreError::Invalid(format!("password hashing failed: {e}"));
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a salt: {e}")))?;
    let salt_text =
        SaltString::encode_b64(&salt).map_err(|e| StoreError::Invalid(format!("salt: {e}")))?;
    let params = argon2::Params::default();
    let argon = Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon, &params, password.as_bytes(), &salt, &mut out)
        .map_err(|e| failed(e.to_string()))?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(&params)
            .map_err(|e| failed(e.to_string()))?,
        salt: Some(salt_text.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|e| failed(e.to_string()))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` (a PHC string, argon2) was made from; compared in
/// constant time, computed in this thread's reused memory.
pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    if params.m_cost() > MAX_ARGON2_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon, &params, password.as_bytes(), salt, &mut out).is_ok()
        && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
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

#[cfg(test)]
mod password_tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_made_here_and_by_the_argon2_crate_verify_both_ways() {
        let ours = hash_password("correct horse battery staple").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(verify_password("correct horse battery staple", &ours));
        assert!(!verify_password("correct horse battery stapler", &ours));
        // Stored before this change: made by the crate's own hasher.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("an older password", &theirs));
        assert!(!verify_password("another password", &theirs));
        // And the crate's verifier takes ours.
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        // Garbage, and a hash asking for absurd memory, are refused, not computed.
        assert!(!verify_password("x", "not a hash"));
        let greedy = ours.replace("m=19456", "m=4000000");
        assert!(!verify_password("correct horse battery staple", &greedy));
    }
}
