//! The web app in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver) against `vigil serve` on cases, sightings and camera health made by a real
//! batch run over the fixtures. An officer logs in and works the queue by keyboard
//! (approve, reject with a reason, correct a plate) while a clip plays; an investigator
//! finds `98A-123.45` by typing `98A-l23.4S`, opens its footage and exports the results,
//! then a live camera's sighting whose footage is the camera's continuous recording, and
//! exports a signed minute of it;
//! the cameras and operations pages draw what the database holds, and the fleet page what
//! the fleet's NATS JetStream says (a worker, the camera it runs, why). Each main page's
//! screenshot is kept under `target/tmp/screenshots/`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use vigil_testkit::browser::{browser, chromedriver};

use common::ok;

const PASSWORD: &str = "correct horse battery";
/// How long a page may take to show what the test waits for before the test fails. A wait,
/// not a measurement: nothing here asserts how fast anything is.
const PATIENCE: Duration = Duration::from_secs(60);

fn vigil(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("VIGIL_PASSWORD", PASSWORD)
        .env_remove("VIGIL_MODELS")
        .output()
        .expect("run vigil")
}

fn cases(data: &Path) -> Vec<Value> {
    ok(vigil(data, &["cases", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a case as JSON"))
        .collect()
}

/// Wait until a script returns true; fails with the last value and the page's status line.
async fn until(c: &Client, what: &str, script: &str) -> Value {
    let started = Instant::now();
    loop {
        let v = c.execute(script, vec![]).await.expect("run script");
        if !(v.is_null() || v == json!(false)) {
            return v;
        }
        if started.elapsed() > PATIENCE {
            let status = c
                .execute(
                    "return (document.querySelector('#status')||{}).textContent",
                    vec![],
                )
                .await
                .unwrap_or_default();
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("waited for {what} on {url}; last value {v}; status line {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.expect("press a key");
}

async fn type_into(c: &Client, css: &str, text: &str) {
    // The page's address changes before its document is built: wait for the field.
    let e = c
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .expect(css);
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let png = c.screenshot().await.expect("screenshot");
    let img = image::load_from_memory(&png).expect("a PNG screenshot");
    assert!(
        img.width() > 800 && img.height() > 600,
        "{name}: {}x{}",
        img.width(),
        img.height()
    );
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

async fn log_in(c: &Client, base: &str, page: &str, user: &str) {
    // A fresh start: no session cookie from the last user.
    c.delete_all_cookies().await.expect("clear cookies");
    c.goto(&format!("{base}{page}")).await.expect("open page");
    let url = c.current_url().await.expect("url");
    assert_eq!(
        url.path(),
        "/login",
        "{page} without a session goes to the login page"
    );
    type_into(c, "#username", user).await;
    type_into(c, "#password", PASSWORD).await;
    c.find(Locator::Css("#login button"))
        .await
        .expect("login button")
        .click()
        .await
        .expect("log in");
    until(
        c,
        &format!("{page} after logging in"),
        &format!("return location.pathname === '{page}'"),
    )
    .await;
}

/// After logging in, a `next` that would leave the site is not followed: these once
/// landed on another origin (a backslash is a slash to the browser, a tab is dropped).
async fn login_stays_on_this_site(c: &Client, base: &str) {
    let nexts = [
        "/%5C127.0.0.2:9/x".to_string(),
        "/%09/127.0.0.2:9/x".into(),
        "//127.0.0.2:9/x".into(),
        "https://127.0.0.2:9/".into(),
        // The second review's: a path that resolves to "//host" on this origin.
        "/.//127.0.0.2:9/x".into(),
        format!("{base}//127.0.0.2:9/x"),
        // Their variants: dot segments, encoded dots and slashes, backslashes.
        "/..//127.0.0.2:9/x".into(),
        "/%2E//127.0.0.2:9/x".into(),
        "/.%2F%2F127.0.0.2:9/x".into(),
        "/./%5C127.0.0.2:9/x".into(),
        format!("{base}/.//127.0.0.2:9/x"),
        format!("{base}%5C%5C127.0.0.2:9/x"),
    ];
    // Logins are limited to 5 a minute per user: four tries each, as three visitors.
    for (n, next) in nexts.iter().enumerate() {
        let user = ["visitor1", "visitor2", "visitor3"][n / 4];
        c.delete_all_cookies().await.expect("clear cookies");
        c.goto(&format!("{base}/login?next={next}"))
            .await
            .expect("open login");
        type_into(c, "#username", user).await;
        type_into(c, "#password", PASSWORD).await;
        c.find(Locator::Css("#login button"))
            .await
            .expect("login button")
            .click()
            .await
            .expect("log in");
        until(
            c,
            &format!("left the login page (next={next})"),
            "return location.pathname !== '/login'",
        )
        .await;
        let url = c.current_url().await.expect("url");
        assert_eq!(
            url.origin().ascii_serialization(),
            base,
            "next={next} led off the site to {url}"
        );
    }
}

/// The case the review page shows, by the number in its heading.
async fn shown_case(c: &Client) -> i64 {
    let v = until(
        c,
        "a case in the review page",
        "const h = document.querySelector('#case h2'); \
         return h && (h.textContent.match(/Case (\\d+)/)||[])[1]",
    )
    .await;
    v.as_str()
        .and_then(|s| s.parse().ok())
        .expect("case number")
}

async fn wait_for_case(c: &Client, other_than: i64) -> i64 {
    let started = Instant::now();
    loop {
        let id = shown_case(c).await;
        if id != other_than {
            return id;
        }
        assert!(started.elapsed() < PATIENCE, "the next case never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_and_investigators_work_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    // Four red-light cases from real video: two demo junction recordings, and the scenario
    // with two small plates.
    let camera = common::camera_path();
    let small = common::checkout().join("fixtures/scenarios/generated/redlight_small.mp4");
    assert!(
        small.is_file(),
        "{} is missing: run scripts/setup",
        small.display()
    );
    let (a, b) = (
        common::fixture("redlight_a.mp4"),
        common::fixture("redlight_b.mp4"),
    );
    // Recorded an hour ago: within every legal deadline, so the server's deadline sweep
    // leaves the cases waiting for review.
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    ok(vigil(
        d,
        &[
            "batch",
            "--camera",
            camera.to_str().unwrap(),
            "--start",
            &start,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            small.to_str().unwrap(),
        ],
    ));
    let before = cases(d);
    assert!(before.len() >= 3, "cases to review: {before:?}");
    for (user, role) in [
        ("officer1", "officer"),
        ("inv1", "investigator"),
        ("admin1", "admin"),
        ("visitor1", "investigator"),
        ("visitor2", "investigator"),
        ("visitor3", "investigator"),
    ] {
        ok(vigil(d, &["user", "add", user, "--role", role]));
    }
    let nats = vigil_testkit::nats::NatsServer::start();
    let nats_url = nats.url();
    // A live camera recorded continuously (its segments in the data folder) and a plate
    // read on it twenty minutes ago, sent by a worker: the sighting's footage is the
    // recording, played by the browser as it is (fragmented MP4), and exported.
    let live_start = chrono::Utc::now() - chrono::Duration::minutes(20);
    record_live_camera(d, "cam-live", live_start);
    let live_token = common::user_with_token(d, "worker1", "operator");
    // The server's recordings library, which operators make batch jobs of in the browser.
    let library = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(library.path().join("web-cam")).unwrap();
    std::fs::copy(
        common::fixture("redlight_b.mp4"),
        library.path().join("web-cam/0900.mp4"),
    )
    .unwrap();
    let library_dir = library.path().display().to_string();
    let server = common::start_server(d, &["--nats", &nats_url, "--recordings", &library_dir]);
    let sent = reqwest::Client::new()
        .post(format!("{}/api/sightings", server.base))
        .bearer_auth(&live_token)
        .json(&json!({"sighting": {
            "sighting_id": "6f1c7a52-0000-5000-8000-000000000001",
            "camera_id": "cam-live",
            "plate": "51F-777.77",
            "confidence": 0.93,
            "vehicle_class": "car",
            "plate_colour": null,
            "seen_at": (live_start + chrono::Duration::seconds(6)).to_rfc3339(),
            "source": "rtsp://10.0.0.9/live",
            "thumbnail": null,
            "video_offset_ms": null,
        }}))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.text().await.unwrap_or_default());
    let base = server.base.clone();
    let (_driver, driver_url) = chromedriver(PATIENCE);
    let c = browser(&driver_url).await;

    // --- An officer: the login page, then the queue, oldest first.
    c.goto(&format!("{base}/review")).await.unwrap();
    until(
        &c,
        "the login form",
        "return !!document.querySelector('#login')",
    )
    .await;
    screenshot(&c, "login").await;
    login_stays_on_this_site(&c, &base).await;
    log_in(&c, &base, "/review", "officer1").await;
    let first = shown_case(&c).await;
    let oldest = before
        .iter()
        .min_by_key(|c| c["occurred_at"].as_str().unwrap_or_default().to_string())
        .unwrap();
    assert_eq!(first, oldest["id"].as_i64().unwrap(), "oldest first");
    // The evidence is in the page: key frames with the stop line drawn over them, the plate
    // crop beside its text, and the clip playing.
    until(
        &c,
        "key frames with the rule's geometry",
        "const f = document.querySelectorAll('.keyframe img'); \
         return f.length >= 2 && [...f].every(i => i.complete && i.naturalWidth > 0) \
           && !!document.querySelector('.overlay .geom-stop_line') \
           && document.querySelector('.overlay').getAttribute('viewBox') !== null",
    )
    .await;
    until(
        &c,
        "the plate crop and its text",
        "const i = document.querySelector('.plate-crop'); \
         return i && i.complete && i.naturalWidth > 0 \
           && document.querySelector('#plate-text').textContent.length > 3",
    )
    .await;
    until(
        &c,
        "the clip playing",
        "const v = document.querySelector('#clip'); \
         return v && !v.error && v.readyState >= 2 && v.currentTime > 0.3 && !v.paused",
    )
    .await;
    let signal = c
        .execute(
            "return document.querySelector('.signal').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(signal, json!("red"), "the signal at the line is shown");
    screenshot(&c, "review").await;

    // Approve by keyboard: the next case opens at once.
    press(&c, 'a').await;
    let second = wait_for_case(&c, first).await;
    // Reject with a reason: R, the reason's number, a note, Enter. Until R, the panel is
    // out of sight.
    let shown = c
        .execute(
            "return getComputedStyle(document.querySelector('#reject-panel')).display",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, json!("none"));
    press(&c, 'r').await;
    until(
        &c,
        "the reject panel",
        "return !document.querySelector('#reject-panel').hidden \
           && document.activeElement.id === 'reject-reason'",
    )
    .await;
    press(&c, '3').await;
    type_into(&c, "#reject-text", "vehicle stopped before the line").await;
    c.find(Locator::Css("#reject-text"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    let third = wait_for_case(&c, second).await;
    // Correct a plate: P, the plate, Enter; the case stays, waiting for approval.
    press(&c, 'p').await;
    until(
        &c,
        "the plate field",
        "return document.activeElement && document.activeElement.id === 'plate-input'",
    )
    .await;
    type_into(&c, "#plate-input", "98A-999.88").await;
    c.find(Locator::Css("#plate-input"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    until(
        &c,
        "the corrected plate shown",
        "return document.querySelector('#plate-text').textContent === '98A-999.88'",
    )
    .await;

    let after = cases(d);
    let state = |id: i64| {
        after
            .iter()
            .find(|c| c["id"].as_i64() == Some(id))
            .cloned()
            .unwrap_or_else(|| panic!("case {id} in {after:?}"))
    };
    assert_eq!(state(first)["state"], "approved", "{:?}", state(first));
    assert_eq!(state(second)["state"], "rejected", "{:?}", state(second));
    assert_eq!(state(third)["state"], "plate_corrected");
    assert_eq!(state(third)["plate"], "98A-999.88");
    let audit = ok(vigil(d, &["audit"]));
    for action in ["approved", "rejected", "plate_corrected"] {
        assert!(
            audit
                .lines()
                .any(|l| l.contains(action) && l.contains("officer1")),
            "{action} audited: {audit}"
        );
    }
    assert!(
        audit.contains("no_violation"),
        "the reason is recorded: {audit}"
    );

    // A case page on its own, as an investigator would open it from a sighting.
    c.goto(&format!("{base}/cases/{first}")).await.unwrap();
    until(
        &c,
        "the case page's clip",
        "const v = document.querySelector('#clip'); return v && v.readyState >= 2 && !v.error",
    )
    .await;
    screenshot(&c, "case").await;

    // --- An investigator: OCR's look-alikes typed, the plate found, its footage played.
    log_in(&c, &base, "/search", "inv1").await;
    type_into(&c, "#plate", "98A-l23.4S").await;
    c.find(Locator::Css("#search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let top = until(
        &c,
        "search results",
        "const p = document.querySelector('#results .sighting .plate'); return p && p.textContent",
    )
    .await;
    assert_eq!(top, json!("98A-123.45"));
    let marks = c
        .execute(
            "return document.querySelectorAll('#timeline .mark').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        marks.as_u64().unwrap_or(0) >= 1,
        "sightings on the timeline"
    );
    let pictured = c
        .execute(
            "return document.querySelectorAll('#timeline image').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(pictured.as_u64().unwrap_or(0) >= 1, "their pictures on it");
    until(
        &c,
        "result thumbnails",
        "const i = document.querySelector('#results img'); return i && i.complete && i.naturalWidth > 0",
    )
    .await;
    c.find(Locator::Css("#results .footage-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the sighting's footage playing",
        "const v = document.querySelector('#footage-video'); \
         return v && !v.error && v.readyState >= 2 && v.currentTime > 0",
    )
    .await;
    screenshot(&c, "search").await;
    // The CSV export holds the same results.
    let csv = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(document.querySelector('#csv').href).then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap_or_default().to_string();
    assert!(csv.starts_with("score,plate,"), "{csv}");
    assert!(csv.contains("98A-123.45"), "{csv}");
    let audit = ok(vigil(d, &["audit"]));
    assert!(
        audit
            .lines()
            .any(|l| l.contains("plate_search") && l.contains("inv1") && l.contains("98A-l23.4S")),
        "the search is audited as typed: {audit}"
    );
    assert!(audit.contains("footage_view"), "{audit}");

    // The live camera's sighting: its continuous recording plays, and a minute around it
    // is exported and downloaded.
    type_into(&c, "#plate", "51F-777.77").await;
    c.find(Locator::Css("#search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the live sighting found",
        "const p = document.querySelector('#results .sighting .plate'); return p && p.textContent === '51F-777.77'",
    )
    .await;
    c.find(Locator::Css("#results .footage-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &c,
        "the camera's recording playing",
        "const v = document.querySelector('#footage-video'); \
         return v && v.src.includes('/recorded') && !v.error && v.readyState >= 2 && v.currentTime > 0",
    )
    .await;
    c.find(Locator::Css("#export-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "the export's links", "return !!document.querySelector('#export-video')").await;
    let size = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(document.querySelector('#export-video').href).then(r => r.ok ? r.arrayBuffer() : null).then(b => done(b ? b.byteLength : 0), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert!(size.as_u64().unwrap_or(0) > 10_000, "the exported video: {size}");
    let audit = ok(vigil(d, &["audit"]));
    assert!(
        audit.lines().any(|l| l.contains("footage_export") && l.contains("inv1")),
        "the export is audited: {audit}"
    );

    // The cameras page: the batch run's camera, on the map and in the list.
    c.goto(&format!("{base}/cameras")).await.unwrap();
    until(
        &c,
        "the camera on the map and its last frame",
        "const i = document.querySelector('#cameras img.thumb'); \
         return !!document.querySelector('#map .pin.cam-recorded') && i && i.complete && i.naturalWidth > 0",
    )
    .await;
    screenshot(&c, "cameras").await;
    // An investigator may not open the operations page.
    c.goto(&format!("{base}/operations")).await.unwrap();
    let body = c.source().await.unwrap();
    assert!(body.contains("Not for your role"), "{body}");

    // --- An admin: operations.
    log_in(&c, &base, "/operations", "admin1").await;
    let approved = until(
        &c,
        "cases per state",
        "const rows = [...document.querySelectorAll('#by-state tr')]; \
         const r = rows.find(r => r.querySelector('th').textContent === 'approved'); \
         return r && r.querySelector('td').textContent",
    )
    .await;
    assert_eq!(approved, json!("1"));
    let waiting = c
        .execute(
            "return document.querySelectorAll('.card .big')[1].textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        waiting,
        json!("0"),
        "no publication waits: nothing was notified"
    );
    screenshot(&c, "operations").await;

    // --- The fleet page: a worker, the camera it runs, and why the camera went there.
    ok(vigil(
        d,
        &[
            "fleet",
            "--nats",
            &nats_url,
            "add-camera",
            "--id",
            "web-cam",
            "--camera-config",
            camera.to_str().unwrap(),
            "--url",
            "rtsp://127.0.0.1:9/none",
        ],
    ));
    let bus = vigil_fleet::Bus::connect(&nats_url, "web-worker-1")
        .await
        .unwrap();
    let agent = vigil_fleet::Agent::start(
        bus,
        vigil_fleet::AgentSettings::new("web-worker-1", 2),
        std::sync::Arc::new(Runs),
    )
    .unwrap();
    c.goto(&format!("{base}/fleet")).await.unwrap();
    until(
        &c,
        "the camera running on the worker",
        "const r = document.querySelector('#fleet-camera-web-cam'); \
         return r && r.textContent.includes('running') && r.textContent.includes('web-worker-1')",
    )
    .await;
    until(
        &c,
        "the worker alive with one camera of two",
        "const r = document.querySelector('#worker-web-worker-1'); \
         return r && r.textContent.includes('alive') && r.textContent.includes('1 / 2')",
    )
    .await;
    until(
        &c,
        "the camera's move and its reason",
        "return [...document.querySelectorAll('#moves tr')] \
         .some(r => r.textContent.includes('web-cam') && r.textContent.includes('unassigned'))",
    )
    .await;
    // A batch job submitted to the fleet's queue: listed with its tasks, none done yet.
    let video = common::fixture("redlight_a.mp4");
    ok(vigil(
        d,
        &[
            "batch",
            "--submit",
            &nats_url,
            "--no-wait",
            "--job",
            "web-job",
            "--camera",
            camera.to_str().unwrap(),
            "--start",
            &start,
            video.to_str().unwrap(),
        ],
    ));
    until(
        &c,
        "the job and its progress",
        "const r = document.querySelector('#job-web-job'); \
         return r && r.textContent.includes('0 / 1') && r.textContent.includes('bn-demo-01')",
    )
    .await;
    // A job made here, of the library's recording, for the fleet's camera: on the queue
    // and in the table like the one submitted from the command line.
    until(
        &c,
        "the new-job form listing the library's recording",
        "return !!document.querySelector('#job-recordings input[value=\"web-cam/0900.mp4\"]')",
    )
    .await;
    c.find(Locator::Css("#job-recordings input[value=\"web-cam/0900.mp4\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.execute(
        "document.querySelector('#job-camera').value = 'web-cam';          document.querySelector('#job-start').value = '2025-03-01T09:00:00'; return true;",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#job-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let said = until(
        &c,
        "the job made in the browser on the queue",
        "const s = document.querySelector('#status').textContent;          return s.includes('1 task(s) on the queue') && s",
    )
    .await;
    let made = said
        .as_str()
        .and_then(|s| s.split_whitespace().nth(1))
        .map(|id| id.trim_end_matches(':').to_string())
        .expect("the job's id in the status line");
    until(
        &c,
        "the browser's job in the jobs table",
        &format!(
            "const r = document.querySelector('#job-{made}'); \
             return r && r.textContent.includes('web-cam') && r.textContent.includes('0 / 1')"
        ),
    )
    .await;
    let audit = ok(vigil(d, &["audit"]));
    assert!(
        audit
            .lines()
            .any(|l| l.contains("job_submit") && l.contains("admin1") && l.contains(&made)),
        "{audit}"
    );
    screenshot(&c, "fleet").await;
    agent.stop().await;
    c.close().await.unwrap();
}

/// A worker that runs whatever it is given (the fleet page shows it; nothing decodes).
struct Runs;

impl vigil_fleet::CameraHost for Runs {
    fn start(&self, _: &vigil_fleet::FleetCamera, _: vigil_fleet::Gate) -> Result<(), String> {
        Ok(())
    }

    fn stop(&self, _: &str) {}
}

/// `camera`'s continuous recording in the data folder `data`: the junction fixture, as a
/// camera sends it (no B-frames), in 4 s segments from `start`.
fn record_live_camera(data: &Path, camera: &str, start: chrono::DateTime<chrono::Utc>) {
    let dir = tempfile::tempdir().unwrap();
    let stream = common::as_a_camera_sends_it("redlight_a", dir.path());
    let mut units = vigil_pipeline::source::clip::FileUnits::open(&stream).unwrap();
    let mut writer = vigil_pipeline::footage::SegmentWriter::new(
        vigil_core::DataDir::new(data).camera_footage(camera),
        Duration::from_secs(4),
    );
    while let Some(unit) = units.next_unit().unwrap() {
        let caps = units.caps().unwrap().clone();
        let wall = start + chrono::Duration::nanoseconds(unit.pts.nseconds() as i64);
        writer.push(&unit, &caps, wall).unwrap();
    }
    writer.close().unwrap();
}
