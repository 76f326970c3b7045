//! The recorder against stores that refuse, on a manual clock: retries and the stop's
//! flush are timed by moving the clock, never by waiting.

use std::sync::atomic::AtomicUsize;

use chrono::DateTime;
use vigil_core::{ManualClock, Recorded, SystemClock};
use vigil_testkit::samples::{sample_event, sample_sighting as sighting};

use super::*;

fn settings(dir: &Path) -> RecorderSettings {
    RecorderSettings {
        queue: 8,
        ..RecorderSettings::new(dir.join("unrecorded"))
    }
}

/// How a test store answers a record: `None`, taken.
type Answer = Box<dyn Fn(&Record) -> Option<SinkError> + Send + Sync>;

/// A store that answers each call as `answer` says, and keeps what it takes and when (on
/// `clock`) each call came.
struct Store {
    answer: Answer,
    taken: Mutex<Vec<Record>>,
    calls: Mutex<Vec<Duration>>,
    clock: Arc<dyn Clock>,
}

impl Store {
    fn new(
        clock: Arc<dyn Clock>,
        answer: impl Fn(&Record) -> Option<SinkError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            answer: Box::new(answer),
            taken: Mutex::default(),
            calls: Mutex::default(),
            clock,
        })
    }

    fn take(&self, r: Record) -> Result<(), SinkError> {
        self.calls.lock().unwrap().push(self.clock.monotonic());
        if let Some(e) = (self.answer)(&r) {
            return Err(e);
        }
        self.taken.lock().unwrap().push(r);
        Ok(())
    }

    fn taken(&self) -> Vec<Record> {
        self.taken.lock().unwrap().clone()
    }
}

impl EventSink for Store {
    fn record_event(&self, e: &ViolationEvent) -> Result<Recorded, SinkError> {
        self.take(Record::Case(e.clone())).map(|_| Recorded::New(1))
    }

    fn record_sighting(&self, s: &Sighting) -> Result<bool, SinkError> {
        self.take(Record::Sighting(s.clone())).map(|_| true)
    }
}

fn down() -> Option<SinkError> {
    Some(SinkError::Unavailable("database is locked".into()))
}

fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        DateTime::parse_from_rfc3339("2025-03-01T08:00:00+07:00")
            .unwrap()
            .to_utc(),
    ))
}

fn start(dir: &Path, store: &Arc<Store>, clock: Arc<dyn Clock>) -> (Recorder, RecorderMetrics) {
    let metrics = RecorderMetrics::default();
    let recorder = Recorder::start(store.clone(), settings(dir), metrics.clone(), clock).unwrap();
    (recorder, metrics)
}

#[test]
fn a_refused_record_is_retried_with_growing_waits_until_taken_and_order_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual();
    let calls = AtomicUsize::new(0);
    // The store is down for its first five calls.
    let store = Store::new(clock.clone(), move |_| {
        (calls.fetch_add(1, Ordering::SeqCst) < 5).then(|| down().unwrap())
    });
    let (recorder, metrics) = start(dir.path(), &store, clock.clone());
    let sent = vec![
        Record::Sighting(sighting(1)),
        Record::Case(sample_event(2)),
        Record::Sighting(sighting(3)),
    ];
    for r in &sent {
        recorder.submit(r.clone());
    }
    // Its retries take longer than a stop waits: let them run out first (on the manual
    // clock this takes no time).
    while store.taken().len() < sent.len() {
        std::thread::yield_now();
    }
    assert_eq!(recorder.finish(), Flushed::default());
    assert_eq!(store.taken(), sent);
    assert_eq!(metrics.refused.get(), 5);
    assert_eq!(metrics.recorded.get(), 3);
    assert_eq!(metrics.waiting.get(), 0);
    // Each wait between half and all of 0.5 s doubled per refusal (the clock moves in
    // steps of at most 50 ms while waiting).
    let calls = store.calls.lock().unwrap().clone();
    for (k, pair) in calls.windows(2).take(5).enumerate() {
        let full = Duration::from_millis(500) * (1 << k);
        let waited = pair[1] - pair[0];
        assert!(
            waited >= full / 2 && waited <= full + Duration::from_millis(50),
            "wait {k}: {waited:?} for a full backoff of {full:?}"
        );
    }
    assert!(
        clock.monotonic() >= Duration::from_millis(7750),
        "{:?}",
        clock.monotonic()
    );
}

#[test]
fn waits_stop_growing_at_thirty_seconds_and_a_stop_gives_a_down_store_ten_more() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual();
    let store = Store::new(clock.clone(), |_| down());
    let (recorder, _) = start(dir.path(), &store, clock.clone());
    recorder.submit(Record::Case(sample_event(1)));
    // Let it be refused for a simulated ten minutes.
    while clock.monotonic() < Duration::from_secs(600) {
        std::thread::yield_now();
    }
    let stopped_at = clock.monotonic();
    assert_eq!(
        recorder.finish(),
        Flushed {
            spooled: 1,
            lost: 0
        }
    );
    let calls = store.calls.lock().unwrap().clone();
    let longest = calls.windows(2).map(|p| p[1] - p[0]).max().unwrap();
    assert!(
        longest >= Duration::from_secs(15) && longest <= Duration::from_millis(30_050),
        "longest wait {longest:?}"
    );
    // Given up once the stop's 10 s ran out, not before; not a whole backoff later.
    let gave_up = clock.monotonic() - stopped_at;
    assert!(
        gave_up >= Duration::from_secs(10) && gave_up < Duration::from_secs(40),
        "{gave_up:?}"
    );
}

#[test]
fn a_store_that_is_down_does_not_hold_up_the_caller_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let is_down = Arc::new(AtomicBool::new(true));
    let d = is_down.clone();
    let store = Store::new(Arc::new(SystemClock), move |_| {
        d.load(Ordering::SeqCst).then(|| down().unwrap())
    });
    let (recorder, metrics) = start(dir.path(), &store, Arc::new(SystemClock));
    // Far more than the queue holds, submitted while the store refuses everything:
    // submit returns each time (this thread would hang otherwise), the overflow spooled.
    let sent: Vec<Record> = (0..100).map(|n| Record::Sighting(sighting(n))).collect();
    for r in &sent {
        recorder.submit(r.clone());
    }
    assert!(metrics.spooled.get() > 0, "nothing overflowed to the spool");
    is_down.store(false, Ordering::SeqCst);
    assert_eq!(recorder.finish(), Flushed::default());
    let mut got = store.taken();
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
    let clock = manual();
    let refusing = Store::new(clock.clone(), |_| down());
    let (recorder, _) = start(dir.path(), &refusing, clock.clone());
    let sent = vec![Record::Case(sample_event(7)), Record::Sighting(sighting(8))];
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
    assert!(refusing.taken().is_empty());
    let spool = dir.path().join("unrecorded");
    assert_eq!(spool_files(&spool).unwrap().len(), 2);
    // A file that is not a record is set aside, not retried and not deleted.
    std::fs::write(
        spool.join("00000000000000000000-000000-case.json"),
        b"{\"case\": 1",
    )
    .unwrap();

    let taking = Store::new(clock.clone(), |_| None);
    let (recorder, _) = start(dir.path(), &taking, clock);
    assert_eq!(recorder.finish(), Flushed::default());
    // The picture's path survives the spool, as does everything else.
    assert_eq!(taking.taken(), sent);
    assert!(spool_files(&spool).unwrap().is_empty());
    assert!(
        spool
            .join("00000000000000000000-000000-case.json.unreadable")
            .is_file()
    );
}

#[test]
fn a_record_the_store_will_never_take_is_set_aside_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual();
    let store = Store::new(clock.clone(), |r| match r {
        Record::Case(_) => Some(SinkError::Refused("malformed violation event".into())),
        Record::Sighting(_) => None,
    });
    let (recorder, metrics) = start(dir.path(), &store, clock);
    recorder.submit(Record::Case(sample_event(1)));
    recorder.submit(Record::Sighting(sighting(2)));
    assert_eq!(recorder.finish(), Flushed::default());
    assert_eq!(store.taken(), vec![Record::Sighting(sighting(2))]);
    assert_eq!((metrics.set_aside.get(), metrics.refused.get()), (1, 0));
    let spool = dir.path().join("unrecorded");
    let aside: Vec<PathBuf> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].to_string_lossy().ends_with("-case.json.refused"));
    let kept: Record = serde_json::from_slice(&std::fs::read(&aside[0]).unwrap()).unwrap();
    assert_eq!(kept, Record::Case(sample_event(1)));
    assert!(spool_files(&spool).unwrap().is_empty(), "never retried");
}

#[test]
fn a_record_handed_over_survives_a_crash_before_its_store_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = Store::new(Arc::new(SystemClock), |_| down());
    let (crashed, _) = start(dir.path(), &refusing, Arc::new(SystemClock));
    let sent: Vec<Record> = (0..20)
        .map(|n| match n % 2 {
            0 => Record::Case(sample_event(n)),
            _ => Record::Sighting(sighting(n)),
        })
        .collect();
    for r in &sent {
        crashed.submit(r.clone());
    }
    // The process dies: no stop, nothing flushed; what was in memory is gone.
    std::mem::forget(crashed);

    let marks = dir.path().join("handed-over");
    let taking = Store::new(Arc::new(SystemClock), |_| None);
    let recorder = Recorder::start(
        taking.clone(),
        RecorderSettings {
            handed_over: Some(marks.clone()),
            ..settings(dir.path())
        },
        RecorderMetrics::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert_eq!(recorder.finish(), Flushed::default());
    assert_eq!(taking.taken(), sent, "each record once, in order");
    // Each case taken is marked, so that its package is not taken for a lost one.
    let mut marked: Vec<String> = std::fs::read_dir(&marks)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    marked.sort();
    let mut cases: Vec<String> = (0..20)
        .step_by(2)
        .map(|n| sample_event(n).event_id.to_string())
        .collect();
    cases.sort();
    assert_eq!(marked, cases);
}
