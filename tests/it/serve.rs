//! `vigil serve` as a real process: users and tokens made with the CLI, an event sent over
//! HTTP by an operator's token, an officer's approval in a session, the registry and the
//! publication receiver as local stand-ins, the background work carrying the case to a
//! published notice, the audit export, and a clean stop on SIGTERM.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common;

use common::ok;

use serde_json::{Value, json};
use vigil_testkit::stand_ins::{RegistryStandIn, WebhookStandIn};
use vigil_ticketing::owner::Owner;

fn vigil(data: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("--data").arg(data).args(args);
    if let Some(p) = password {
        cmd.env("VIGIL_PASSWORD", p);
    }
    cmd.output().expect("run vigil")
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let resp = http.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap()
}

/// An event whose package is filed in the data folder `dir`, signed with its key.
fn event_with_evidence(dir: &Path) -> vigil_core::ViolationEvent {
    let mut e = vigil_testkit::samples::sample_event(42);
    // Recent: a violation more than a year old expires at the first deadline sweep.
    e.occurred_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let data = vigil_core::DataDir::new(dir);
    let key = vigil_evidence::EvidenceKey::load_or_create(&data.keys()).unwrap();
    vigil_testkit::samples::file_package(&data.evidence(), &mut e, &key);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_carries_an_event_from_intake_to_a_published_notice_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    ok(vigil(
        d,
        &["user", "add", "officer1", "--role", "officer"],
        Some("officer password 1"),
    ));
    ok(vigil(
        d,
        &["user", "add", "worker", "--role", "operator"],
        Some("operator password 1"),
    ));
    let refused = vigil(
        d,
        &["user", "add", "x", "--role", "chief"],
        Some("long enough password"),
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`chief` is not a role"));
    let token = ok(vigil(d, &["token", "create", "worker"], None))
        .trim()
        .to_string();
    assert!(token.starts_with("vgl_"), "{token}");

    let registry = RegistryStandIn::start(vec![Owner {
        plate: "98A-123.45".into(),
        owner_name: "Trần Thị Bình".into(),
        owner_id_number: None,
        address: "5 Ngô Gia Tự, Bắc Ninh".into(),
        province: None,
        vehicle_type: Some("ô tô con".into()),
        brand: None,
        colour: None,
        plate_colour: Some("white".into()),
    }])
    .await;
    let webhook = WebhookStandIn::start(0).await;
    let mut server = common::start_server(
        d,
        &[
            "--registry-url",
            &registry.url(),
            "--publish-url",
            &webhook.url(),
        ],
    );
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // A pipeline worker sends the event with its token.
    let event = event_with_evidence(d);
    let resp = http
        .post(format!("{}/api/events", server.base))
        .bearer_auth(&token)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let case_id = resp.json::<Value>().await.unwrap()["case_id"]
        .as_i64()
        .unwrap();

    // The officer logs in and approves, with the CSRF token the login returned.
    let resp = http
        .post(format!("{}/api/login", server.base))
        .json(&json!({"username": "officer1", "password": "officer password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csrf = resp.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = http
        .post(format!("{}/api/cases/{case_id}/approve", server.base))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The background work identifies the owner, issues and publishes the notice.
    let deadline = Instant::now() + Duration::from_secs(60);
    let case = loop {
        let case = get_json(&http, &format!("{}/api/cases/{case_id}", server.base)).await;
        if case["state"] == "notice_sent" && !webhook.received.lock().unwrap().is_empty() {
            break case;
        }
        assert!(Instant::now() < deadline, "case never published: {case}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(case["owner"]["owner_name"], "Trần Thị Bình");
    let code = case["notice_code"].as_str().unwrap().to_string();
    let page = http
        .get(format!("{}/notices/{code}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Trần Thị Bình"));
    let doc = get_json(&http, &format!("{}/api/openapi.json", server.base)).await;
    assert!(doc["paths"]["/api/events"]["post"].is_object());

    // SIGTERM: the server finishes and exits 0.
    let status = crate::common::sigterm(&mut server.child);
    assert!(status.success(), "vigil serve exited with {status}");

    let overdue = ok(vigil(d, &["cases", "--overdue"], None));
    assert!(overdue.contains("no case is past a deadline"), "{overdue}");
    let audit = ok(vigil(d, &["audit"], None));
    let actions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for a in ["login", "approved", "notice_view"] {
        assert!(
            actions.iter().any(|x| x == a),
            "audit lacks {a}: {actions:?}"
        );
    }
    let table = ok(vigil(d, &["cases"], None));
    assert!(table.contains("notice_sent"), "{table}");
}
