//! The first connection to a case database, made alone and bounded, so that a database
//! that is down, refuses us, or sits in a folder we cannot write is named at once with
//! the reason, instead of a pool waiting out its timeout to say only that it timed out.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;

use super::{Backend, StoreError, redact};

/// How long the first connection may take: a database on this network answers in
/// milliseconds; a dropped packet or a dead host should not hold a start for long.
pub const FIRST_CONNECTION: Duration = Duration::from_secs(10);

pub(super) async fn first_connection(url: &str, backend: Backend) -> Result<(), StoreError> {
    let location = redact(url);
    if backend == Backend::Sqlite {
        create_owner_only(url);
    }
    let attempt = tokio::time::timeout(FIRST_CONNECTION, sqlx::AnyConnection::connect(url)).await;
    let reason = match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Ok(Err(e)) => match backend {
            Backend::Sqlite => sqlite_reason(url, &e),
            Backend::Postgres => postgres_reason(&e),
        },
        Err(_) => format!(
            "no answer within {} s (is the host up and the port open?)",
            FIRST_CONNECTION.as_secs()
        ),
    };
    Err(StoreError::Unreachable { location, reason })
}

fn postgres_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("{io} (is PostgreSQL running there?)"),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

fn sqlite_reason(url: &str, e: &sqlx::Error) -> String {
    let Some(path) = sqlite_path(url) else {
        return e.to_string();
    };
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    if !folder.is_dir() {
        return format!("{e} (the folder {} does not exist)", folder.display());
    }
    let readonly = std::fs::metadata(&folder)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false);
    if readonly || tempfile_fails(&folder) {
        return format!(
            "{e} (the folder {} cannot be written to: the database and its journal live there)",
            folder.display()
        );
    }
    e.to_string()
}

fn tempfile_fails(folder: &std::path::Path) -> bool {
    let probe = folder.join(format!(".vigil-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            false
        }
        Err(_) => true,
    }
}

/// The file a `sqlite://` URL names, if it names one.
pub(super) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// A new database file is made readable by its owner alone before SQLite writes to it
/// (if this fails, the connection that follows names why).
#[cfg(unix)]
fn create_owner_only(url: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(path) = sqlite_path(url)
        && !path.exists()
    {
        let _ = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path);
    }
}

#[cfg(not(unix))]
fn create_owner_only(_url: &str) {}

/// The database holds names, addresses and the audit log: only its owner reads it. The
/// journal files SQLite makes beside it take their mode from it.
#[cfg(unix)]
pub(super) fn owner_only(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    for file in [
        path.clone(),
        PathBuf::from(format!("{}-wal", path.display())),
        PathBuf::from(format!("{}-shm", path.display())),
    ] {
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot make {} readable by its owner only: {e}",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn owner_only(_url: &str) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///a/b.db?mode=rwc"),
            Some(PathBuf::from("/a/b.db"))
        );
        assert_eq!(sqlite_path("sqlite:rel.db"), Some(PathBuf::from("rel.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
