//! Cases and plate reads reach their stores from a thread of their own.
//!
//! A database that is slow or down must not hold up the inference workers (every camera
//! they serve would drop frames meanwhile), and a record a store refused must not be lost.
//! So the workers hand records over here and go on; this thread records them in order and
//! retries one a store refused, with capped exponential backoff, until it is taken. What
//! the bounded queue cannot hold goes to a spool folder on disk, and so does what is still
//! unrecorded when the process stops; the next start records the spool first. The stores
//! ignore a record they already hold (case events and sightings have ids derived from what
//! they describe), so a retry after a store took a record but failed to answer never makes
//! a second case.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use vigil_core::Sighting;
use vigil_core::ViolationEvent;

use super::camera::backoff;
use super::runner::{EventSink, SightingSink};

/// Something for a store: a violation for the case store, a plate read for search.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Case(ViolationEvent),
    Sighting(Sighting),
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Case(e) => write!(f, "violation event {} ({})", e.event_id, e.evidence_dir),
            Record::Sighting(s) => write!(
                f,
                "plate read {} at {} ({})",
                s.plate, s.camera_id, s.sighting_id
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecorderSettings {
    /// Where records wait on disk: those the queue could not hold, and those left at stop.
    pub spool: PathBuf,
    /// Records held in memory (queued and being retried) before new ones go to the spool.
    pub queue: usize,
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// How long stopping waits for a refusing store before spooling what is left.
    pub flush_for: Duration,
}

impl RecorderSettings {
    pub fn new(spool: PathBuf) -> Self {
        Self {
            spool,
            queue: 256,
            retry_first: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            flush_for: Duration::from_secs(10),
        }
    }
}

/// The recorder's counters, registered with the runner's other metrics.
#[derive(Clone, Default)]
pub struct RecorderMetrics {
    pub recorded: Counter,
    pub refused: Counter,
    /// Records in memory not yet taken by their store.
    pub waiting: Gauge,
    /// Records written to the spool folder (overflow or left at a stop).
    pub spooled: Counter,
}

/// What stopping left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flushed {
    /// Records written to the spool by this stop, for the next start to record.
    pub spooled: usize,
    /// Records that could be written nowhere (named in the log): lost.
    pub lost: usize,
}

struct Item {
    record: Record,
    /// The spool file it was read from, removed once it is recorded.
    file: Option<PathBuf>,
}

struct Shared {
    spool: PathBuf,
    /// Set when records were written to the spool that this thread has not read.
    spool_unread: AtomicBool,
    /// Once set, a refusing store is retried only until then.
    give_up_at: Mutex<Option<Instant>>,
    sequence: AtomicU64,
    metrics: RecorderMetrics,
}

pub struct Recorder {
    tx: Mutex<Option<SyncSender<Item>>>,
    thread: Mutex<Option<JoinHandle<VecDeque<Item>>>>,
    shared: Arc<Shared>,
    flush_for: Duration,
}

impl Recorder {
    /// Start the recorder thread; records an earlier run left in the spool go first.
    pub fn start(
        cases: EventSink,
        sightings: SightingSink,
        settings: RecorderSettings,
        metrics: RecorderMetrics,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(&settings.spool)
            .map_err(|e| format!("spool folder {}: {e}", settings.spool.display()))?;
        let left = spool_files(&settings.spool)
            .map_err(|e| format!("spool folder {}: {e}", settings.spool.display()))?
            .len();
        if left > 0 {
            tracing::info!(spool = %settings.spool.display(), records = left, "recording what an earlier run left unrecorded first");
        }
        let shared = Arc::new(Shared {
            spool: settings.spool.clone(),
            spool_unread: AtomicBool::new(left > 0),
            give_up_at: Mutex::new(None),
            sequence: AtomicU64::new(0),
            metrics,
        });
        let flush_for = settings.flush_for;
        // The channel is small: the thread moves records into its own backlog at once.
        let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue.clamp(1, 64));
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("recorder".into())
                .spawn(move || run(rx, cases, sightings, &shared, &settings))
                .map_err(|e| format!("cannot start the recorder: {e}"))?
        };
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            shared,
            flush_for,
        })
    }

    /// Hand a record over; it never waits for a store. When the queue is full it goes to
    /// the spool folder; if even that cannot be written, the log names it as lost.
    pub fn submit(&self, record: Record) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(tx) = tx else {
            // Stopped: nothing takes records any more but the spool.
            self.spool_or_log(&record);
            return;
        };
        self.shared.metrics.waiting.inc();
        match tx.try_send(Item { record, file: None }) {
            Ok(()) => {}
            Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item)) => {
                self.shared.metrics.waiting.dec();
                self.spool_or_log(&item.record);
            }
        }
    }

    fn spool_or_log(&self, record: &Record) {
        match spool_write(&self.shared, record) {
            Ok(path) => {
                tracing::warn!(record = %record, spool = %path.display(), "the store is behind; record kept in the spool");
                self.shared.spool_unread.store(true, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::error!(record = %record, error = %e, "record LOST: neither the store nor the spool took it");
            }
        }
    }

    /// Stop: record what is queued, retrying a refusing store for at most the flush time,
    /// then write what is left to the spool.
    pub fn finish(&self) -> Flushed {
        *self
            .shared
            .give_up_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + self.flush_for);
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(thread) = thread else {
            return Flushed::default();
        };
        let left = match thread.join() {
            Ok(left) => left,
            Err(_) => {
                tracing::error!("the recorder thread panicked; records it held are lost");
                return Flushed::default();
            }
        };
        let mut flushed = Flushed::default();
        for item in left {
            self.shared.metrics.waiting.dec();
            if item.file.is_some() {
                // Still in the spool from before.
                continue;
            }
            match spool_write(&self.shared, &item.record) {
                Ok(path) => {
                    tracing::warn!(record = %item.record, spool = %path.display(), "not recorded before stopping; kept in the spool for the next start");
                    flushed.spooled += 1;
                }
                Err(e) => {
                    tracing::error!(record = %item.record, error = %e, "record LOST at stop: neither the store nor the spool took it");
                    flushed.lost += 1;
                }
            }
        }
        flushed
    }
}

fn run(
    rx: Receiver<Item>,
    cases: EventSink,
    sightings: SightingSink,
    shared: &Shared,
    settings: &RecorderSettings,
) -> VecDeque<Item> {
    let mut backlog: VecDeque<Item> = VecDeque::new();
    let mut open = true;
    let mut refusals = 0u32;
    let mut retry_at: Option<Instant> = None;
    loop {
        if backlog.is_empty() && shared.spool_unread.swap(false, Ordering::SeqCst) {
            let read = spool_read(&shared.spool);
            shared.metrics.waiting.inc_by(read.len() as i64);
            backlog.extend(read);
        }
        while open && backlog.len() < settings.queue {
            match rx.try_recv() {
                Ok(item) => backlog.push_back(item),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let Some(front) = backlog.front() else {
            if !open {
                if shared.spool_unread.load(Ordering::SeqCst) {
                    continue;
                }
                return backlog;
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => backlog.push_back(item),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            continue;
        };
        if let Some(at) = retry_at {
            let give_up = *shared.give_up_at.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if give_up.is_some_and(|g| now >= g) {
                // Stopping and the store still refuses: the caller spools the rest.
                while let Ok(item) = rx.try_recv() {
                    backlog.push_back(item);
                }
                return backlog;
            }
            if now < at {
                std::thread::sleep((at - now).min(Duration::from_millis(50)));
                continue;
            }
        }
        let outcome = match &front.record {
            Record::Case(event) => cases(event.clone()),
            Record::Sighting(s) => sightings(s.clone()),
        };
        match outcome {
            Ok(()) => {
                if let Some(file) = &front.file
                    && let Err(e) = std::fs::remove_file(file)
                {
                    // Recording it again at the next start adds nothing (ids are stable).
                    tracing::warn!(file = %file.display(), error = %e, "recorded, but its spool file could not be removed");
                }
                backlog.pop_front();
                shared.metrics.recorded.inc();
                shared.metrics.waiting.dec();
                refusals = 0;
                retry_at = None;
            }
            Err(e) => {
                shared.metrics.refused.inc();
                let wait = backoff(refusals, settings.retry_first, settings.retry_max);
                refusals += 1;
                tracing::error!(record = %front.record, error = %e, retry_in = ?wait, waiting = backlog.len(), "the store refused a record; retrying");
                retry_at = Some(Instant::now() + wait);
            }
        }
    }
}

/// How a record is kept on disk (a sighting with its picture's path, which the API's form
/// of it leaves out).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Spooled {
    Case(ViolationEvent),
    Sighting(Sighting),
}

impl From<&Record> for Spooled {
    fn from(r: &Record) -> Self {
        match r {
            Record::Case(e) => Spooled::Case(e.clone()),
            Record::Sighting(s) => Spooled::Sighting(s.clone()),
        }
    }
}

impl From<Spooled> for Record {
    fn from(s: Spooled) -> Self {
        match s {
            Spooled::Case(e) => Record::Case(e),
            Spooled::Sighting(s) => Record::Sighting(s),
        }
    }
}

/// Write one record to the spool: a temporary file renamed into place, so that a file
/// with the spool's name is always whole.
fn spool_write(shared: &Shared, record: &Record) -> Result<PathBuf, String> {
    let json = serde_json::to_vec(&Spooled::from(record)).map_err(|e| e.to_string())?;
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let n = shared.sequence.fetch_add(1, Ordering::SeqCst);
    let kind = match record {
        Record::Case(_) => "case",
        Record::Sighting(_) => "sighting",
    };
    let name = format!("{nanos:020}-{n:06}-{kind}.json");
    let path = shared.spool.join(&name);
    let tmp = shared.spool.join(format!(".{name}.tmp"));
    let written = std::fs::create_dir_all(&shared.spool)
        .and_then(|_| {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => {
            shared.metrics.spooled.inc();
            Ok(path)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!("{}: {e}", path.display()))
        }
    }
}

fn spool_files(spool: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(spool)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    // Names begin with the time they were written.
    files.sort();
    Ok(files)
}

/// The records in the spool, oldest first. A file that is not a record is renamed
/// `*.unreadable` (kept for a person to look at, not retried).
fn spool_read(spool: &Path) -> Vec<Item> {
    let files = match spool_files(spool) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(spool = %spool.display(), error = %e, "cannot read the spool folder");
            return Vec::new();
        }
    };
    let mut items = Vec::new();
    for file in files {
        let parsed = std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Spooled>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(s) => items.push(Item {
                record: s.into(),
                file: Some(file),
            }),
            Err(e) => {
                let aside = file.with_extension("json.unreadable");
                tracing::error!(file = %file.display(), error = %e, moved_to = %aside.display(), "a spool file is not a record; set aside");
                let _ = std::fs::rename(&file, &aside);
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use vigil_testkit::samples::sample_sighting as sighting;

    fn settings(dir: &Path) -> RecorderSettings {
        RecorderSettings {
            spool: dir.join("unrecorded"),
            queue: 8,
            retry_first: Duration::from_millis(1),
            retry_max: Duration::from_millis(20),
            flush_for: Duration::from_millis(200),
        }
    }

    type Taken = Arc<Mutex<Vec<Record>>>;

    /// Sinks that refuse while `refuse` returns true, and keep what they take.
    fn sinks(
        refuse: impl Fn() -> bool + Send + Sync + 'static,
    ) -> (EventSink, SightingSink, Taken) {
        let taken: Taken = Arc::default();
        let refuse = Arc::new(refuse);
        let (t1, r1) = (taken.clone(), refuse.clone());
        let cases: EventSink = Arc::new(move |e| {
            if r1() {
                return Err("database is locked".into());
            }
            t1.lock().unwrap().push(Record::Case(e));
            Ok(())
        });
        let t2 = taken.clone();
        let sightings: SightingSink = Arc::new(move |s| {
            if refuse() {
                return Err("connection refused".into());
            }
            t2.lock().unwrap().push(Record::Sighting(s));
            Ok(())
        });
        (cases, sightings, taken)
    }

    /// A recorder over `dir`'s spool whose stores refuse while `refuse` returns true.
    fn start_recorder(
        dir: &Path,
        refuse: impl Fn() -> bool + Send + Sync + 'static,
    ) -> (Recorder, Taken, RecorderMetrics) {
        let (cases, sightings, taken) = sinks(refuse);
        let metrics = RecorderMetrics::default();
        let recorder = Recorder::start(cases, sightings, settings(dir), metrics.clone()).unwrap();
        (recorder, taken, metrics)
    }

    #[test]
    fn a_refused_record_is_retried_until_taken_and_order_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        // The store refuses its first five calls.
        let (recorder, taken, metrics) =
            start_recorder(dir.path(), move || c.fetch_add(1, Ordering::SeqCst) < 5);
        let sent = vec![
            Record::Sighting(sighting(1)),
            Record::Case(vigil_testkit::samples::sample_event(2)),
            Record::Sighting(sighting(3)),
        ];
        for r in &sent {
            recorder.submit(r.clone());
        }
        assert_eq!(recorder.finish(), Flushed::default());
        assert_eq!(*taken.lock().unwrap(), sent);
        assert_eq!(metrics.refused.get(), 5);
        assert_eq!(metrics.recorded.get(), 3);
        assert_eq!(metrics.waiting.get(), 0);
    }

    #[test]
    fn a_store_that_is_down_does_not_hold_up_the_caller_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let down = Arc::new(AtomicBool::new(true));
        let d = down.clone();
        let (recorder, taken, metrics) =
            start_recorder(dir.path(), move || d.load(Ordering::SeqCst));
        // Far more than the queue holds, submitted while the store refuses everything:
        // submit returns each time (this thread would hang otherwise), the overflow spooled.
        let sent: Vec<Record> = (0..100).map(|n| Record::Sighting(sighting(n))).collect();
        for r in &sent {
            recorder.submit(r.clone());
        }
        assert!(metrics.spooled.get() > 0, "nothing overflowed to the spool");
        down.store(false, Ordering::SeqCst);
        assert_eq!(recorder.finish(), Flushed::default());
        let mut got = taken.lock().unwrap().clone();
        got.sort_by_key(|r| match r {
            Record::Sighting(s) => s.sighting_id,
            Record::Case(e) => e.event_id,
        });
        assert_eq!(got, sent, "every record reached the store exactly once");
        assert!(
            spool_files(&dir.path().join("unrecorded"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn what_a_stop_leaves_unrecorded_is_spooled_and_recorded_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (recorder, taken, _) = start_recorder(dir.path(), || true);
        let sent = vec![
            Record::Case(vigil_testkit::samples::sample_event(7)),
            Record::Sighting(sighting(8)),
        ];
        for r in &sent {
            recorder.submit(r.clone());
        }
        assert_eq!(
            recorder.finish(),
            Flushed {
                spooled: 2,
                lost: 0
            }
        );
        assert!(taken.lock().unwrap().is_empty());
        let spool = dir.path().join("unrecorded");
        assert_eq!(spool_files(&spool).unwrap().len(), 2);
        // A file that is not a record is set aside, not retried and not deleted.
        std::fs::write(
            spool.join("00000000000000000000-000000-case.json"),
            b"{\"case\": 1",
        )
        .unwrap();

        let (recorder, taken, _) = start_recorder(dir.path(), || false);
        assert_eq!(recorder.finish(), Flushed::default());
        // The picture's path survives the spool, as does everything else.
        assert_eq!(*taken.lock().unwrap(), sent);
        assert!(spool_files(&spool).unwrap().is_empty());
        assert!(
            spool
                .join("00000000000000000000-000000-case.json.unreadable")
                .is_file()
        );
    }
}
