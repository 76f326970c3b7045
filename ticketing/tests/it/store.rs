use super::prelude::*;
use vigil_ticketing::CaseState;
use vigil_ticketing::db::*;

fn now() -> DateTime<Utc> {
    "2025-03-01T02:00:00Z".parse().unwrap()
}

fn window() -> Duration {
    Duration::minutes(5)
}

#[tokio::test]
async fn the_same_event_recorded_three_times_is_one_case() {
    for (backend, store, _dir) in stores::both().await {
        eprintln!("backend {backend}");
        the_same_event_three_times(store).await;
    }
}

async fn the_same_event_three_times(store: CaseStore) {
    let record = |n| {
        let store = store.clone();
        async move {
            store
                .record(&sample_event(n), None, now(), window())
                .await
                .unwrap()
        }
    };
    let first = record(7).await;
    let Recorded::New(id) = first else {
        panic!("first record was {first:?}")
    };
    assert_eq!(record(7).await, Recorded::Duplicate(id));
    assert_eq!(record(7).await, Recorded::Duplicate(id));
    assert!(matches!(record(8).await, Recorded::New(_)));
    let cases = store.list().await.unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].plate.as_deref(), Some("98A-123.45"));
    assert_eq!(cases[0].state, CaseState::Detected);
    assert_eq!(store.event(id).await.unwrap(), Some(sample_event(7)));
    let detail = store.case(id).await.unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.history.len(), 1);
    assert_eq!(detail.history[0].action, "detected");
}

#[tokio::test]
async fn events_of_one_plate_violation_and_camera_within_the_window_merge_keeping_all_evidence() {
    for (backend, store, _dir) in stores::both().await {
        let base = sample_event(1);
        let at = |e: &ViolationEvent, id: u128, secs: i64| {
            let mut e = e.clone();
            e.event_id = uuid::Uuid::from_u128(id);
            e.occurred_at = base.occurred_at + Duration::seconds(secs);
            e
        };
        let first = store.record(&base, None, now(), window()).await.unwrap();
        let id = first.case_id().expect("recorded");
        // 4 min later: merges; 8 min after the first (4 after the second): merges too,
        // the window runs from the case's latest event.
        for (n, secs) in [(100, 240), (101, 480)] {
            assert_eq!(
                store
                    .record(&at(&base, n, secs), None, now(), window())
                    .await
                    .unwrap(),
                Recorded::Merged(id),
                "{backend}"
            );
        }
        // 20 min later: a new case. Another camera, violation-time or plate: new cases.
        let late = at(&base, 102, 1200);
        assert!(matches!(
            store.record(&late, None, now(), window()).await.unwrap(),
            Recorded::New(n) if n != id
        ));
        let mut other_camera = at(&base, 103, 10);
        other_camera.camera_id = "cam-2".into();
        assert!(matches!(
            store
                .record(&other_camera, None, now(), window())
                .await
                .unwrap(),
            Recorded::New(_)
        ));
        let mut no_plate = at(&base, 104, 10);
        no_plate.plate = None;
        assert!(matches!(
            store
                .record(&no_plate, None, now(), window())
                .await
                .unwrap(),
            Recorded::New(_)
        ));
        let detail = store.case(id).await.unwrap();
        // Every event's evidence is kept with the case, each its own package.
        let events: Vec<_> = detail.events.iter().map(|e| e.event_id.clone()).collect();
        let ids = [1u128, 100, 101].map(|n| uuid::Uuid::from_u128(n).to_string());
        assert_eq!(events, ids, "{backend}");
        assert_eq!(
            detail
                .history
                .iter()
                .map(|h| h.action.as_str())
                .collect::<Vec<_>>(),
            ["detected", "event_merged", "event_merged"]
        );
        // Merging the same event again is still a duplicate.
        assert_eq!(
            store
                .record(&at(&base, 100, 240), None, now(), window())
                .await
                .unwrap(),
            Recorded::Duplicate(id)
        );
        assert_eq!(store.count().await.unwrap(), 4, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_events_from_ten_concurrent_writers_make_exactly_the_expected_cases() {
    for (backend, store, _dir) in stores::both().await {
        // Writer w sends events w*100 .. w*100+99, and every writer also resends the
        // first ten events of the writer before it: 1,000 distinct events, 1,100 sends.
        let mut writers = Vec::new();
        for w in 0..10u128 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut outcomes = (0, 0);
                let resend = ((w + 9) % 10) * 100;
                for n in (w * 100..w * 100 + 100).chain(resend..resend + 10) {
                    match store
                        .record(&sample_event(n + 1), None, now(), window())
                        .await
                        .unwrap()
                    {
                        Recorded::New(_) => outcomes.0 += 1,
                        Recorded::Duplicate(_) => outcomes.1 += 1,
                        Recorded::Merged(id) => panic!("merged into {id}"),
                        Recorded::Queued => panic!("a case store queued"),
                    }
                }
                outcomes
            }));
        }
        let (mut new, mut dup) = (0, 0);
        for w in writers {
            let (n, d) = w.await.unwrap();
            new += n;
            dup += d;
        }
        assert_eq!((new, dup), (1000, 100), "{backend}");
        assert_eq!(store.count().await.unwrap(), 1000, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_of_one_vehicle_make_one_case() {
    for (backend, store, _dir) in stores::both().await {
        // Ten writers at once, each with a different event of the same plate a few
        // seconds apart: the dedup lock must give exactly one case holding all ten.
        let mut writers = Vec::new();
        for w in 0..10u128 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut e = sample_event(1);
                e.event_id = uuid::Uuid::from_u128(500 + w);
                e.occurred_at += Duration::seconds(w as i64);
                store.record(&e, None, now(), window()).await.unwrap()
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(store.count().await.unwrap(), 1, "{backend}");
        let id = store.list().await.unwrap()[0].id;
        assert_eq!(store.case(id).await.unwrap().events.len(), 10);
    }
}

#[tokio::test]
async fn history_rows_cannot_be_changed_or_deleted() {
    for (backend, store, _dir) in stores::both().await {
        store
            .record(&sample_event(1), None, now(), window())
            .await
            .unwrap();
        for sql in [
            "UPDATE case_history SET actor = 'someone else'",
            "DELETE FROM case_history",
        ] {
            let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{backend}: {err}");
        }
    }
}

/// The migration that keyed the plates already stored folds in SQL; the fold of record is
/// Rust's. Both databases must fold every look-alike as Rust does, and the migration must
/// hold the expression made from the same table.
#[tokio::test]
async fn the_sql_fold_is_the_rust_fold_on_both_databases() {
    let expr = vigil_core::look_alike::fold_plate_sql("plate");
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    for dialect in ["sqlite", "postgres"] {
        let migration = std::fs::read_to_string(format!(
            "{}/migrations/{dialect}/20261123000003_lifecycle.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(
            squeeze(&migration).contains(&squeeze(&expr)),
            "{dialect}: the migration's fold is not {expr}"
        );
    }
    let samples = [
        "98A-l23.4S",
        "29-B1 002.33",
        "29-81 OO2.33",
        "51g-0o2.zb",
        "odilbszg",
        "ODILBSZG-. 0123456789",
        "30LD-123.45",
    ];
    for (backend, store, _dir) in stores::both().await {
        for plate in samples {
            let folded: String = sqlx::query_scalar(&format!(
                "SELECT {} AS k",
                vigil_core::look_alike::fold_plate_sql("$1")
            ))
            .bind(plate)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(folded, fold_plate(plate), "{backend}: {plate}");
        }
    }
}

#[test]
fn passwords_stay_out_of_error_messages() {
    assert_eq!(
        redact("postgres://vigil:s3cret@db:5432/vigil"),
        "postgres://vigil:***@db:5432/vigil"
    );
    assert_eq!(redact("sqlite://data/vigil.db"), "sqlite://data/vigil.db");
}

#[tokio::test]
async fn reopening_keeps_cases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.db");
    let store = CaseStore::open_sqlite(&path).await.unwrap();
    store
        .record(&sample_event(1), None, now(), window())
        .await
        .unwrap();
    store.close().await;
    let store = CaseStore::open_sqlite(&path).await.unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_named_with_the_reason() {
    // Nothing listens on port 1: the error says so, instead of a pool timing out.
    let err = CaseStore::open("postgres://vigil:s3cret@127.0.0.1:1/test")
        .await
        .err()
        .expect("no database there")
        .to_string();
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("vigil.db");
    let err = CaseStore::open_sqlite(&missing)
        .await
        .err()
        .expect("no folder there")
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("no-such-folder"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let store = CaseStore::open_sqlite(&path).await.unwrap();
    store
        .record(&sample_event(1), None, now(), window())
        .await
        .unwrap();
    for file in [path.clone(), dir.path().join("vigil.db-wal")] {
        if let Ok(meta) = std::fs::metadata(&file) {
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{}",
                file.display()
            );
        }
    }
    assert!(path.exists());
    // An existing database made readable by others is closed up when opened.
    store.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = CaseStore::open_sqlite(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
