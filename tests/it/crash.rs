//! Crash tests: `vigil run` killed −9 while its database is unreachable and again right
//! after it writes an evidence package, and `vigil serve` killed −9 in the middle of taking
//! a worker's package and its event. After each, once everything is back up, every
//! violation packaged is on exactly one case and every case's package verifies. Each test
//! prints its counts (violations produced, recorded, lost, duplicated).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::common::{self, Records, ok, start_worker, stop, vigil};

/// A TCP relay to `target` whose link can be cut (every open connection shut, new ones
/// closed as soon as they arrive) and restored: a database outage as the worker sees one.
struct Link {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut open = o.lock().unwrap();
                for s in [&client, &server] {
                    open.push(s.try_clone().unwrap());
                }
                relay(client, server);
            }
        });
        Link { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// Copy both ways until either side closes.
fn relay(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}

/// The point in a request to the service at which the service is killed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KillPoint {
    /// Half of an evidence file's body has reached the service.
    MidUpload,
    /// An event's whole request has reached the service, before its answer.
    EventSent,
}

/// An HTTP relay to the service that reads each request as it passes and, at each of
/// `plan`'s points in turn, tells the test (and waits until it has killed the service).
fn start_tap(
    target: SocketAddr,
    plan: Vec<KillPoint>,
) -> (u16, mpsc::Receiver<(KillPoint, mpsc::Sender<()>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let plan = Arc::new(Mutex::new(plan));
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(target) else {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            };
            let (tx, plan) = (tx.clone(), plan.clone());
            let mut answers = server.try_clone().unwrap();
            let mut back = client.try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut answers, &mut back);
                let _ = back.shutdown(Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = tap_requests(client, server, &plan, &tx);
            });
        }
    });
    (port, rx)
}

fn tap_requests(
    mut client: TcpStream,
    mut server: TcpStream,
    plan: &Mutex<Vec<KillPoint>>,
    tx: &mpsc::Sender<(KillPoint, mpsc::Sender<()>)>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = client.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + length {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let request: Vec<u8> = buf.drain(..end + length).collect();
        let point = if head.starts_with("PUT /api/evidence/") && length >= 2 {
            Some(KillPoint::MidUpload)
        } else if head.starts_with("POST /api/events ") {
            Some(KillPoint::EventSent)
        } else {
            None
        };
        let due = {
            let mut plan = plan.lock().unwrap();
            let due = point.is_some() && plan.first().copied() == point;
            if due {
                plan.remove(0);
            }
            due
        };
        if !due {
            server.write_all(&request)?;
            continue;
        }
        let sent = match point {
            Some(KillPoint::MidUpload) => end + length / 2,
            _ => request.len(),
        };
        server.write_all(&request[..sent])?;
        server.flush()?;
        let (done_tx, done_rx) = mpsc::channel();
        let _ = tx.send((point.unwrap(), done_tx));
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
}

fn kill_9(child: &mut Child) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status}");
}

/// The complete packages in a data folder: its evidence folders named by an event id.
fn packages(data: &Path) -> BTreeSet<String> {
    std::fs::read_dir(data.join("evidence"))
        .map(|d| {
            d.map_while(Result::ok)
                .filter(|e| e.path().join("manifest.json").is_file())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .filter(|n| n.parse::<uuid::Uuid>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Half-written leftovers in a data folder's evidence (a crash's, to be cleaned on start).
fn partials(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join("evidence"))
        .map(|d| {
            d.map_while(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Cases records waiting in a worker's journal.
fn journaled(data: &Path) -> usize {
    std::fs::read_dir(data.join("unrecorded"))
        .map(|d| {
            d.map_while(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with("-case.json"))
                .count()
        })
        .unwrap_or(0)
}

/// How many cases each event id is on, in the database at `url` (or the data folder's).
fn events_on_cases(url: Option<&str>, data: &Path) -> BTreeMap<String, usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = match url {
            Some(u) => vigil_ticketing::CaseStore::open(u).await,
            None => vigil_ticketing::CaseStore::open_sqlite(&data.join("vigil.db")).await,
        }
        .unwrap();
        let mut on = BTreeMap::new();
        for c in store.list().await.unwrap() {
            for e in store.case(c.id).await.unwrap().events {
                *on.entry(e.event_id).or_default() += 1;
            }
        }
        store.close().await;
        on
    })
}

/// Poll `done` every `every` until it holds; fails after `limit` naming `what`.
fn wait_until(limit: Duration, every: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "not within {limit:?}: {what}");
        std::thread::sleep(every);
    }
}

const OFTEN: Duration = Duration::from_millis(5);
const NOW_AND_THEN: Duration = Duration::from_millis(250);

/// The counts a crash test ends with; fails unless none is lost or duplicated, and prints
/// them (`cargo nextest run crash --no-capture` shows them).
fn account(name: &str, produced: &BTreeSet<String>, on: &BTreeMap<String, usize>) {
    let lost: Vec<&String> = produced.iter().filter(|id| !on.contains_key(*id)).collect();
    let duplicated: Vec<(&String, &usize)> = on.iter().filter(|(_, n)| **n > 1).collect();
    let unknown: Vec<&String> = on.keys().filter(|id| !produced.contains(*id)).collect();
    println!(
        "crash test {name}: violations produced {}, recorded {}, lost {}, duplicated {}",
        produced.len(),
        on.len(),
        lost.len(),
        duplicated.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "on more than one case: {duplicated:?}"
    );
    assert!(unknown.is_empty(), "cases with no package: {unknown:?}");
}

/// `vigil verify` of every case's package in `data` (against the cases that recorded them).
fn verify_all(data: &Path, database: &[String], ids: &BTreeSet<String>) {
    let mut args: Vec<String> = database.to_vec();
    args.push("verify".into());
    for id in ids {
        args.push(data.join("evidence").join(id).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(vigil(data, &args));
    assert_eq!(out.matches(": OK\n").count(), ids.len(), "{out}");
}

#[test]
fn vigil_run_killed_during_a_database_outage_loses_and_duplicates_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_camera, deployment) = common::junction_camera(data, 1, 1);
    let url = common::fresh_postgres_url();
    let mut through = reqwest::Url::parse(&url).unwrap();
    let target = through
        .socket_addrs(|| Some(5432))
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let link = Link::start(target);
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(link.port)).unwrap();
    let store = Records {
        global: vec!["--database".to_string(), through.to_string()],
        run: Vec::new(),
    };

    let (mut child, _log) = start_worker(data, &deployment, &store);
    wait_until(
        Duration::from_secs(120),
        NOW_AND_THEN,
        "a first case recorded",
        || !events_on_cases(Some(&url), data).is_empty(),
    );

    // The database goes away; the worker goes on packaging, keeping its cases in the
    // journal, and is killed with at least one of them waiting there.
    link.cut();
    let before = packages(data).len();
    wait_until(
        Duration::from_secs(120),
        NOW_AND_THEN,
        "a package written during the outage",
        || packages(data).len() > before && journaled(data) > 0,
    );
    kill_9(&mut child);
    assert!(journaled(data) > 0);
    let recorded_before = events_on_cases(Some(&url), data).len();

    link.restore();
    let (child, _log) = start_worker(data, &deployment, &store);
    wait_until(
        Duration::from_secs(120),
        NOW_AND_THEN,
        "the journal recorded",
        || {
            journaled(data) == 0 && {
                let on = events_on_cases(Some(&url), data);
                packages(data).iter().all(|id| on.contains_key(id)) && on.len() > recorded_before
            }
        },
    );
    stop(child);
    assert!(partials(data).is_empty(), "{:?}", partials(data));
    let produced = packages(data);
    let on = events_on_cases(Some(&url), data);
    account("database outage", &produced, &on);
    verify_all(data, &["--database".into(), url.clone()], &produced);
}

#[test]
fn vigil_run_killed_right_after_writing_a_package_records_it_once_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (_camera, deployment) = common::junction_camera(data, 1, 1);
    let mut killed_on = Vec::new();
    for _ in 0..2 {
        let before = packages(data);
        let (mut child, _log) = start_worker(data, &deployment, &Records::default());
        // As soon as the package's folder is renamed into place, and before the worker
        // can go on: what a power cut at that instant leaves.
        let mut new = None;
        wait_until(Duration::from_secs(120), OFTEN, "a new package", || {
            new = packages(data).difference(&before).next().cloned();
            new.is_some()
        });
        kill_9(&mut child);
        killed_on.push(new.unwrap());
    }
    let (child, log) = start_worker(data, &deployment, &Records::default());
    // The packages may have been recorded before the kills: then only a started worker
    // can be stopped cleanly.
    common::wait_running(&log);
    wait_until(
        Duration::from_secs(60),
        NOW_AND_THEN,
        "the packages recorded",
        || {
            let on = events_on_cases(None, data);
            killed_on.iter().all(|id| on.contains_key(id))
        },
    );
    stop(child);
    assert!(partials(data).is_empty(), "{:?}", partials(data));
    let produced = packages(data);
    let on = events_on_cases(None, data);
    account("package written", &produced, &on);
    verify_all(data, &[], &produced);
}

#[test]
fn vigil_serve_killed_while_taking_a_package_loses_and_duplicates_no_violation() {
    let service_dir = tempfile::tempdir().unwrap();
    let worker_dir = tempfile::tempdir().unwrap();
    let (service, worker) = (service_dir.path(), worker_dir.path());
    let token = common::user_with_token(service, "worker", "operator");
    let (_camera, deployment) = common::junction_camera(worker, 1, 1);
    common::trust_worker_key(service, worker);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = common::start_server_on(service, &listen, &[]);
    let (tap, kills) = start_tap(
        listen.parse().unwrap(),
        vec![
            KillPoint::MidUpload,
            KillPoint::EventSent,
            KillPoint::MidUpload,
        ],
    );
    let store = Records {
        global: Vec::new(),
        run: vec![
            "--service-url".into(),
            format!("http://127.0.0.1:{tap}"),
            "--service-token".into(),
            token,
        ],
    };
    let (child, _log) = start_worker(worker, &deployment, &store);
    for _ in 0..3 {
        let (point, done) = kills
            .recv_timeout(Duration::from_secs(120))
            .expect("the worker sent a package to the service");
        kill_9(&mut server.child);
        let _ = done.send(());
        drop(server);
        eprintln!("killed vigil serve at {point:?}");
        server = common::start_server_on(service, &listen, &[]);
    }
    wait_until(
        Duration::from_secs(180),
        NOW_AND_THEN,
        "every package recorded",
        || {
            journaled(worker) == 0 && {
                let on = events_on_cases(None, service);
                let made = packages(worker);
                made.len() >= 3 && made.iter().all(|id| on.contains_key(id))
            }
        },
    );
    stop(child);
    let produced = packages(worker);
    wait_until(
        Duration::from_secs(60),
        NOW_AND_THEN,
        "the last packages recorded",
        || {
            let on = events_on_cases(None, service);
            produced.iter().all(|id| on.contains_key(id))
        },
    );
    drop(server);
    let on = events_on_cases(None, service);
    account("service killed mid-intake", &produced, &on);
    verify_all(service, &[], &produced);
}
