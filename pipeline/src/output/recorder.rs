//! Cases and plate reads reach their store from a thread of their own.
//!
//! A database that is slow or down must not hold up the inference workers (every camera
//! they serve would drop frames meanwhile), and a record a store refused must not be lost,
//! not even when the process is killed. So a record handed over is first written to the
//! journal (the spool folder, flushed to the disk) and only then queued; this thread
//! records them in order, retries one the store could not take, with capped exponential
//! backoff, until it is taken, and only then removes its journal file. Whatever a crash,
//! a stop or a full queue leaves is in the journal, and the next start records it first.
//! A record the store says it will never take is set aside in the spool for a person
//! (`*.json.refused`), and the rest go on. Stores ignore a record they already hold (ids
//! are derived from what records describe), so a retry after a store took a record but
//! failed to answer never makes a second case. Waits are on the injected clock.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use vigil_core::{Clock, EventSink, Sighting, SinkError, ViolationEvent};

use crate::retry::backoff;

/// Something for the store: a violation for the case store, a plate read for search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Case(ViolationEvent),
    Sighting(Sighting),
}

impl Record {
    fn send(&self, sink: &dyn EventSink) -> Result<(), SinkError> {
        match self {
            Record::Case(e) => sink.record_event(e).map(|_| ()),
            Record::Sighting(s) => sink.record_sighting(s).map(|_| ()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Record::Case(_) => "case",
            Record::Sighting(_) => "sighting",
        }
    }
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Case(e) => write!(
                f,
                "{} violation event {} at {}",
                e.violation.as_str(),
                e.event_id,
                e.camera_id
            ),
            Record::Sighting(s) => write!(
                f,
                "plate read {} at {} ({})",
                s.plate, s.camera_id, s.sighting_id
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("spool folder {path}: {source}")]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the recorder thread: {0}")]
    Thread(std::io::Error),
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
    /// Where a case taken by its store is marked (an empty file named by its event id),
    /// so that a start can tell a package whose case never reached the store.
    pub handed_over: Option<PathBuf>,
}

impl RecorderSettings {
    pub fn new(spool: PathBuf) -> Self {
        Self {
            spool,
            queue: 256,
            retry_first: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            flush_for: Duration::from_secs(10),
            handed_over: None,
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
    /// Records written to the journal (every record, before it is queued).
    pub spooled: Counter,
    /// Records the store will never take, set aside for a person.
    pub set_aside: Counter,
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
    /// Set when records were written to the spool that the thread has not read.
    spool_unread: AtomicBool,
    /// Once set (monotonic time), a refusing store is retried only until then.
    give_up_at: Mutex<Option<Duration>>,
    sequence: AtomicU64,
    metrics: RecorderMetrics,
    clock: Arc<dyn Clock>,
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
        sink: Arc<dyn EventSink>,
        settings: RecorderSettings,
        metrics: RecorderMetrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RecorderError> {
        let spool_err = |source| RecorderError::Spool {
            path: settings.spool.clone(),
            source,
        };
        std::fs::create_dir_all(&settings.spool).map_err(spool_err)?;
        let left = spool_files(&settings.spool).map_err(spool_err)?.len();
        if left > 0 {
            tracing::info!(spool = %settings.spool.display(), records = left, "recording what an earlier run left unrecorded first");
        }
        let shared = Arc::new(Shared {
            spool: settings.spool.clone(),
            spool_unread: AtomicBool::new(left > 0),
            give_up_at: Mutex::new(None),
            sequence: AtomicU64::new(0),
            metrics,
            clock,
        });
        let flush_for = settings.flush_for;
        // The channel is small: the thread moves records into its own backlog at once.
        let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue.clamp(1, 64));
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("recorder".into())
                .spawn(move || run(rx, sink.as_ref(), &shared, &settings))
                .map_err(RecorderError::Thread)?
        };
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            shared,
            flush_for,
        })
    }

    /// Hand a record over: once this returns, the record is in the journal on disk (a
    /// crash from now on cannot lose it). It never waits for the store. When the queue is
    /// full, the thread reads the record from the journal later; if the journal cannot be
    /// written (a full disk), the record waits in memory only, and the log says so.
    pub fn submit(&self, record: Record) {
        let file = match spool_write(&self.shared, &record, "json") {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::error!(record = %record, error = %e, "the journal cannot be written: the record waits in memory only and is lost if the process dies");
                None
            }
        };
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let unqueued = match tx {
            Some(tx) => {
                self.shared.metrics.waiting.inc();
                match tx.try_send(Item { record, file }) {
                    Ok(()) => return,
                    Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                        self.shared.metrics.waiting.dec();
                        item
                    }
                }
            }
            // Stopped: the journal keeps it for the next start.
            None => Item { record, file },
        };
        match unqueued.file {
            Some(path) => {
                tracing::warn!(record = %unqueued.record, journal = %path.display(), "the store is behind; the record waits in the journal");
                self.shared.spool_unread.store(true, Ordering::SeqCst);
            }
            None => {
                tracing::error!(record = %unqueued.record, "record LOST: neither the store, the queue nor the journal took it");
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
            .unwrap_or_else(|p| p.into_inner()) =
            Some(self.shared.clock.monotonic() + self.flush_for);
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
                // In the journal: the next start records it.
                flushed.spooled += 1;
                continue;
            }
            match spool_write(&self.shared, &item.record, "json") {
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

/// The recorder thread: returns what it could not record once stopping gave up on it.
fn run(
    rx: Receiver<Item>,
    sink: &dyn EventSink,
    shared: &Shared,
    settings: &RecorderSettings,
) -> VecDeque<Item> {
    let clock = shared.clock.as_ref();
    let mut backlog = Backlog::default();
    let mut open = true;
    let mut refusals = 0u32;
    let mut retry_at: Option<Duration> = None;
    loop {
        if backlog.is_empty() && shared.spool_unread.swap(false, Ordering::SeqCst) {
            // What is queued first, so that a record both queued and in the journal is
            // taken once.
            while open {
                match rx.try_recv() {
                    Ok(item) => backlog.push(item, shared),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            for item in spool_read(&shared.spool) {
                shared.metrics.waiting.inc();
                backlog.push(item, shared);
            }
        }
        while open && backlog.len() < settings.queue {
            match rx.try_recv() {
                Ok(item) => backlog.push(item, shared),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let Some(front) = backlog.front() else {
            if !open {
                if shared.spool_unread.load(Ordering::SeqCst) {
                    continue;
                }
                return backlog.items;
            }
            // Nothing to do until a record comes or the recorder stops. (Records spooled
            // meanwhile were spooled because the channel was full: never while idle here.)
            match rx.recv() {
                Ok(item) => backlog.push(item, shared),
                Err(_) => open = false,
            }
            continue;
        };
        if let Some(at) = retry_at {
            let give_up = *shared.give_up_at.lock().unwrap_or_else(|p| p.into_inner());
            let now = clock.monotonic();
            if give_up.is_some_and(|g| now >= g) {
                // Stopping and the store still refuses: the caller spools the rest.
                while let Ok(item) = rx.try_recv() {
                    backlog.push(item, shared);
                }
                return backlog.items;
            }
            if now < at {
                // In short steps, so that a stop is noticed.
                clock.sleep((at - now).min(Duration::from_millis(50)));
                continue;
            }
        }
        match front.record.send(sink) {
            Ok(()) => {
                if let (Record::Case(e), Some(marks)) = (&front.record, &settings.handed_over) {
                    mark_handed_over(marks, e.event_id);
                }
                if let Some(file) = &front.file
                    && let Err(e) = std::fs::remove_file(file)
                {
                    // Recording it again at the next start adds nothing (ids are stable).
                    tracing::warn!(file = %file.display(), error = %e, "recorded, but its journal file could not be removed");
                }
                backlog.pop_front();
                shared.metrics.recorded.inc();
                shared.metrics.waiting.dec();
                refusals = 0;
                retry_at = None;
            }
            Err(e) if e.is_retryable() => {
                shared.metrics.refused.inc();
                let wait = backoff(refusals, settings.retry_first, settings.retry_max);
                refusals += 1;
                tracing::error!(record = %front.record, error = %e, retry_in = ?wait, waiting = backlog.len(), "the store could not take a record; retrying");
                retry_at = Some(clock.monotonic() + wait);
            }
            Err(e) => {
                set_aside(shared, front, &e);
                backlog.pop_front();
                shared.metrics.waiting.dec();
                refusals = 0;
                retry_at = None;
            }
        }
    }
}

/// The records the thread holds, each journal file once.
#[derive(Default)]
struct Backlog {
    items: VecDeque<Item>,
    files: HashSet<PathBuf>,
}

impl Backlog {
    /// Take an item unless its journal file is held already, or gone (recorded already:
    /// it was read from the journal before it came through the queue).
    fn push(&mut self, item: Item, shared: &Shared) {
        if let Some(file) = &item.file
            && (self.files.contains(file) || !file.exists())
        {
            shared.metrics.waiting.dec();
            return;
        }
        if let Some(file) = &item.file {
            self.files.insert(file.clone());
        }
        self.items.push_back(item);
    }

    fn pop_front(&mut self) {
        if let Some(Item {
            file: Some(file), ..
        }) = self.items.pop_front()
        {
            self.files.remove(&file);
        }
    }

    fn front(&self) -> Option<&Item> {
        self.items.front()
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Mark a case as taken by its store (see [`RecorderSettings::handed_over`]).
pub fn mark_handed_over(marks: &Path, event_id: uuid::Uuid) {
    let made = std::fs::create_dir_all(marks)
        .and_then(|_| std::fs::File::create(marks.join(event_id.to_string())).map(|_| ()));
    if let Err(e) = made {
        // Unmarked, the next start sends the case again: the store ignores it.
        tracing::warn!(event = %event_id, marks = %marks.display(), error = %e, "recorded, but the case could not be marked as handed over");
    }
}

/// The events of the cases waiting in a journal.
pub fn journaled_events(spool: &Path) -> HashSet<uuid::Uuid> {
    spool_read(spool)
        .into_iter()
        .filter_map(|item| match item.record {
            Record::Case(e) => Some(e.event_id),
            Record::Sighting(_) => None,
        })
        .collect()
}

/// A record the store will never take: kept in the spool under a name the spool never
/// reads again (`*.json.refused`), for a person to look at.
fn set_aside(shared: &Shared, item: &Item, why: &SinkError) {
    shared.metrics.set_aside.inc();
    let kept = match &item.file {
        Some(file) => {
            let aside = file.with_extension("json.refused");
            std::fs::rename(file, &aside)
                .map(|_| aside)
                .map_err(|e| e.to_string())
        }
        None => spool_write(shared, &item.record, "json.refused"),
    };
    match kept {
        Ok(path) => {
            tracing::error!(record = %item.record, error = %why, kept = %path.display(), "the store refused a record for good; set aside for a person")
        }
        Err(e) => {
            tracing::error!(record = %item.record, error = %why, spool_error = %e, "the store refused a record for good and it could not be set aside: LOST")
        }
    }
}

/// Write one record to the spool: a temporary file renamed into place, so that a file
/// with the spool's name is always whole.
fn spool_write(shared: &Shared, record: &Record, extension: &str) -> Result<PathBuf, String> {
    let json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    let nanos = shared.clock.now().timestamp_nanos_opt().unwrap_or_default();
    let n = shared.sequence.fetch_add(1, Ordering::SeqCst);
    let name = format!("{nanos:020}-{n:06}-{}.{extension}", record.kind());
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
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(record) => items.push(Item {
                record,
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
mod tests;
