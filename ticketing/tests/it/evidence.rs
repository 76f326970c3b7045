//! Evidence is the service's own: an event cannot name a file on the server, a package is
//! taken only when it is the event's, intact and signed by a trusted key, and only the
//! files a manifest lists are ever served, never through a link.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_evidence::EvidenceKey;
use vigil_testkit::samples::{file_package, sample_event};
use vigil_testkit::stores;
use vigil_ticketing::Role;

use super::http::{Harness, start};

impl Harness {
    async fn put(&self, role: Role, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let resp = reqwest::Client::new()
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[&role])
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Send every file of the package in `dir` under `event_id`, as a worker elsewhere does.
    async fn upload(&self, dir: &std::path::Path, event_id: &str) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let (status, body) = self
                .put(
                    Role::Operator,
                    &format!("/api/evidence/{event_id}/{name}"),
                    std::fs::read(&path).unwrap(),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        }
    }

    async fn get_evidence(&self, event_id: &str, file: &str) -> StatusCode {
        self.call(
            Some(Role::Officer),
            Method::GET,
            &format!("/api/evidence/{event_id}/{file}"),
            None,
        )
        .await
        .0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_cannot_name_a_server_file_and_only_listed_files_of_its_package_are_served() {
    for (backend, store, _dir) in stores::both().await {
        let h = start(backend, store).await;
        let root = h.data.root().display().to_string();

        // The attack as it was: a (version 1) event naming the data folder itself as its
        // evidence, then a request for the signing key and the database through it.
        let mut old = serde_json::to_value(sample_event(1)).unwrap();
        old["schema_version"] = json!(1);
        old["evidence_dir"] = json!(root);
        let (status, body) = h
            .call(Some(Role::Operator), Method::POST, "/api/events", Some(old))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("no evidence package"),
            "{body}"
        );
        let id = sample_event(1).event_id.to_string();
        for file in [
            "evidence-signing.key",
            "vigil.db",
            "..%2Fkeys%2Fevidence-signing.key",
        ] {
            let status = h.get_evidence(&id, file).await;
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
                "{backend}: {file}: {status}"
            );
        }
        assert_eq!(h.state.store.count().await.unwrap(), 0);

        // A version 1 event whose package is filed is taken, its path forgotten.
        let mut e = h.event(2);
        let mut v1 = serde_json::to_value(&e).unwrap();
        v1["schema_version"] = json!(1);
        v1["evidence_dir"] = json!("/etc");
        let (status, body) = h
            .call(Some(Role::Operator), Method::POST, "/api/events", Some(v1))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {body}");
        let (_, stored) = h
            .state
            .store
            .event_by_id(&e.event_id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert!(!serde_json::to_string(&stored).unwrap().contains("/etc"));

        // In a filed package: a file the manifest does not list, and a listed file
        // replaced by a link to the key, are not served; the manifest and listed files are.
        let package = h.data.package(e.event_id);
        let key_file = h.data.keys().join("evidence-signing.key");
        std::fs::copy(&key_file, package.join("secret.key")).unwrap();
        let id = e.event_id.to_string();
        assert_eq!(
            h.get_evidence(&id, "secret.key").await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(h.get_evidence(&id, "manifest.json").await, StatusCode::OK);
        assert_eq!(h.get_evidence(&id, "plate.jpg").await, StatusCode::OK);
        std::fs::remove_file(package.join("plate.jpg")).unwrap();
        std::os::unix::fs::symlink(&key_file, package.join("plate.jpg")).unwrap();
        assert_eq!(
            h.get_evidence(&id, "plate.jpg").await,
            StatusCode::NOT_FOUND
        );
        // An event sent again is checked again: its package no longer verifies.
        e.schema_version = vigil_core::EVENT_SCHEMA_VERSION;
        let (status, body) = h.send_event(&e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("symbolic link"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_package_is_filed_only_when_it_is_the_events_intact_and_trusted() {
    for (backend, store, _dir) in stores::both().await {
        let h = start(backend, store).await;
        let elsewhere = tempfile::tempdir().unwrap();

        // Names that are not a package's file, and ids that are not an event's.
        for (path, expect) in [
            (
                "/api/evidence/00000000-0000-0000-0000-000000000001/..%2F..%2Fkeys",
                "not an evidence file name",
            ),
            (
                "/api/evidence/00000000-0000-0000-0000-000000000001/.hidden",
                "not an evidence file name",
            ),
            ("/api/evidence/not-an-id/a.jpg", "not an event id"),
        ] {
            let (status, body) = h.put(Role::Operator, path, b"x".to_vec()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {path}: {body}");
            assert!(body["error"].as_str().unwrap().contains(expect), "{body}");
        }

        // Signed by a key the service does not trust: refused, nothing filed.
        let stranger = EvidenceKey::load_or_create(&elsewhere.path().join("keys")).unwrap();
        let mut untrusted = sample_event(3);
        file_package(
            &elsewhere.path().join("evidence"),
            &mut untrusted,
            &stranger,
        );
        let id = untrusted.event_id.to_string();
        h.upload(&elsewhere.path().join("evidence").join(&id), &id)
            .await;
        let (status, body) = h.send_event(&untrusted).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("not a trusted key"),
            "{body}"
        );
        assert!(!h.data.package(untrusted.event_id).exists());

        // Another event's package (intact, trusted) sent as this one's: refused.
        let mut other = sample_event(4);
        file_package(&elsewhere.path().join("evidence"), &mut other, &h.key);
        let mut this = sample_event(5);
        this.evidence_manifest_sha256 = other.evidence_manifest_sha256.clone();
        let this_id = this.event_id.to_string();
        h.upload(
            &elsewhere
                .path()
                .join("evidence")
                .join(other.event_id.to_string()),
            &this_id,
        )
        .await;
        let (status, body) = h.send_event(&this).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
        assert!(body["error"].as_str().unwrap().contains("not of"), "{body}");

        // The event's own package: filed, served, and sent again changes nothing.
        let id = other.event_id.to_string();
        let dir = elsewhere.path().join("evidence").join(&id);
        h.upload(&dir, &id).await;
        let (status, body) = h.send_event(&other).await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {body}");
        assert_eq!(
            std::fs::read(h.data.package(other.event_id).join("2_on.jpg")).unwrap(),
            std::fs::read(dir.join("2_on.jpg")).unwrap()
        );
        assert!(!h.data.evidence().join(".incoming").join(&id).exists());
        let (status, body) = h
            .put(
                Role::Operator,
                &format!("/api/evidence/{id}/2_on.jpg"),
                b"changed".to_vec(),
            )
            .await;
        assert_eq!(
            (status, body["stored"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        assert_eq!(h.get_evidence(&id, "2_on.jpg").await, StatusCode::OK);
        assert_eq!(h.state.store.count().await.unwrap(), 1, "{backend}");
    }
}

/// The second review's high finding: a file of the package sent again while its event
/// was being checked was filed unchecked (16 of 30 rounds), its hash no longer the signed
/// manifest's. Now what is filed is what was checked: each round posts the event while
/// the same operator sends a forged `plate.jpg` for it, and every package filed holds the
/// original bytes (an event whose check saw the forgery is refused instead). Which of the
/// two a racing round ends in depends on the scheduler (on PostgreSQL the check is slower
/// and the forgery often wins every round), so both ends are also played in order: the
/// forgery before the event is refused, the event before the forgery is filed intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_sent_again_while_its_event_is_checked_never_replaces_what_was_checked() {
    for (backend, store, _dir) in stores::both().await {
        let h = start(backend, store).await;
        let worker = tempfile::tempdir().unwrap();
        let forged = b"\xFF\xD8\xFF\xE0 a forged plate".to_vec();

        // In order, forgery first: the check sees it and refuses the event.
        let mut e = sample_event(6998);
        file_package(worker.path(), &mut e, &h.key);
        let id = e.event_id.to_string();
        h.upload(&worker.path().join(&id), &id).await;
        let path = format!("/api/evidence/{id}/plate.jpg");
        assert_eq!(
            h.put(Role::Operator, &path, forged.clone()).await.0,
            StatusCode::CREATED
        );
        let (status, body) = h.send_event(&e).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
        assert!(!h.data.package(e.event_id).exists(), "{backend}");

        // In order, event first: filed as checked, the forgery after it changes nothing.
        let mut e = sample_event(6999);
        file_package(worker.path(), &mut e, &h.key);
        let id = e.event_id.to_string();
        let dir = worker.path().join(&id);
        h.upload(&dir, &id).await;
        let (status, body) = h.send_event(&e).await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {body}");
        let path = format!("/api/evidence/{id}/plate.jpg");
        let (status, body) = h.put(Role::Operator, &path, forged.clone()).await;
        assert_eq!(
            (status, &body["stored"]),
            (StatusCode::OK, &Value::Bool(false))
        );
        assert!(
            std::fs::read(h.data.package(e.event_id).join("plate.jpg")).unwrap()
                == std::fs::read(dir.join("plate.jpg")).unwrap()
        );

        let (mut filed, mut refused) = (0, 0);
        for round in 0..30u128 {
            let mut e = sample_event(7000 + round);
            file_package(worker.path(), &mut e, &h.key);
            let dir = worker.path().join(e.event_id.to_string());
            let id = e.event_id.to_string();
            h.upload(&dir, &id).await;
            let original = std::fs::read(dir.join("plate.jpg")).unwrap();
            let path = format!("/api/evidence/{id}/plate.jpg");
            // Start the forgeries a little later each round, so the rounds spread over
            // the check instead of all landing before it.
            let lag = std::time::Duration::from_millis((round % 10) as u64 * 3);
            let swaps = async {
                tokio::time::sleep(lag).await;
                for _ in 0..4 {
                    h.put(Role::Operator, &path, forged.clone()).await;
                }
            };
            let ((status, body), ()) = tokio::join!(h.send_event(&e), swaps);
            let package = h.data.package(e.event_id);
            if status == StatusCode::CREATED {
                filed += 1;
                let kept = std::fs::read(package.join("plate.jpg")).unwrap();
                assert!(
                    kept == original,
                    "{backend}: round {round}: a forged plate was filed"
                );
                // And what reviewers are served is that file.
                assert_eq!(h.get_evidence(&id, "plate.jpg").await, StatusCode::OK);
            } else {
                refused += 1;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {body}");
                assert!(!package.exists(), "{backend}: a refused package was filed");
            }
            // Once filed, a file sent again changes nothing.
            if package.exists() {
                let (status, body) = h.put(Role::Operator, &path, forged.clone()).await;
                assert_eq!(status, StatusCode::OK, "{backend}: {body}");
                assert_eq!(body["stored"], false, "{backend}: {body}");
                assert!(std::fs::read(package.join("plate.jpg")).unwrap() == original);
            }
        }
        eprintln!("{backend}: racing, {filed} filed as checked, {refused} refused as forged");
        assert_eq!(filed + refused, 30, "{backend}");
    }
}
