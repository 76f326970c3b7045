//! Cross-camera batching: requests from many cameras (frames, regions, plate crops) are
//! gathered into one model run, as DeepStream's stream muxer does, because a GPU runs a
//! batch of B inputs in little more time than one. A batch leaves when it is full or when
//! its first request has waited `max_wait`, so no request waits longer than that plus the
//! run itself: set `max_wait` under a frame interval and latency stays within one frame.
//!
//! The runner is whatever can run a batch (a detector with a batch axis, the plate
//! reader); it runs on this module's thread, one batch at a time. Each request gets its
//! own answer back, in its own channel: answers are matched to requests by position, and a
//! runner that returns another count than it was given fails the whole batch, by name,
//! rather than hand one camera another camera's detections.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs one batch: `inputs` in, one output per input, in the same order.
pub trait BatchRun<I, O>: Send {
    fn run(&mut self, inputs: Vec<I>) -> Result<Vec<O>, String>;
}

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Requests in one run at most.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
}

/// Why a request got no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch this request was in failed: {0}")]
    Run(String),
    #[error("the batch runner stopped before answering")]
    Stopped,
}

struct Request<I, O> {
    input: I,
    reply: SyncSender<Result<O, BatchError>>,
}

/// A batching front to a runner on a thread of its own. Cloneable handles are not needed:
/// share it behind an `Arc` (submitting takes `&self`).
pub struct Batcher<I, O> {
    requests: Option<Sender<Request<I, O>>>,
    thread: Option<JoinHandle<()>>,
}

/// Told the size of each batch as it runs.
pub type BatchObserver = Box<dyn FnMut(usize) + Send>;

/// Every batch's size, in order (for the bench and for tests; a long-running process
/// observes into a metric instead, which does not grow).
pub type BatchSizes = std::sync::Arc<std::sync::Mutex<Vec<usize>>>;

/// An observer that appends each batch's size to `sizes`.
pub fn recorded_in(sizes: &BatchSizes) -> BatchObserver {
    let sizes = sizes.clone();
    Box::new(move |n| {
        if let Ok(mut s) = sizes.lock() {
            s.push(n);
        }
    })
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Start `runner` on its thread. `observer`, when given, is told each batch's size
    /// before it runs (a metric; a test's record).
    pub fn start(
        name: &str,
        mut runner: Box<dyn BatchRun<I, O>>,
        settings: BatchSettings,
        mut observer: Option<BatchObserver>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request<I, O>>();
        let max_batch = settings.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name(format!("batch-{name}"))
            .spawn(move || {
                while let Some(batch) = gather(&rx, max_batch, settings.max_wait) {
                    if let Some(observe) = observer.as_mut() {
                        observe(batch.len());
                    }
                    answer(runner.as_mut(), batch);
                }
            })?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hand `input` to the next batch; its output comes on the receiver.
    pub fn submit(&self, input: I) -> Receiver<Result<O, BatchError>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let request = Request { input, reply };
        match &self.requests {
            Some(tx) => {
                if let Err(mpsc::SendError(request)) = tx.send(request) {
                    let _ = request.reply.send(Err(BatchError::Stopped));
                }
            }
            None => {
                let _ = request.reply.send(Err(BatchError::Stopped));
            }
        }
        answer
    }

    /// Submit and wait for the output.
    pub fn run(&self, input: I) -> Result<O, BatchError> {
        self.submit(input)
            .recv()
            .unwrap_or(Err(BatchError::Stopped))
    }
}

impl<I, O> Drop for Batcher<I, O> {
    /// Requests already queued are run; then the thread ends.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The next batch: the first request waited for without limit (none: the batcher is
/// gone), then others until the batch is full or the first has waited `max_wait`.
fn gather<I, O>(
    rx: &Receiver<Request<I, O>>,
    max_batch: usize,
    max_wait: Duration,
) -> Option<Vec<Request<I, O>>> {
    let first = rx.recv().ok()?;
    let deadline = Instant::now() + max_wait;
    let mut batch = vec![first];
    while batch.len() < max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => batch.push(r),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Some(batch)
}

/// Run a batch and send each request its output, or every request the failure.
fn answer<I, O>(runner: &mut dyn BatchRun<I, O>, batch: Vec<Request<I, O>>) {
    let (inputs, replies): (Vec<I>, Vec<SyncSender<Result<O, BatchError>>>) =
        batch.into_iter().map(|r| (r.input, r.reply)).unzip();
    let given = inputs.len();
    match runner.run(inputs) {
        Ok(outputs) if outputs.len() == given => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(Ok(output));
            }
        }
        Ok(outputs) => {
            let why = format!(
                "the runner gave {} outputs for {given} inputs",
                outputs.len()
            );
            tracing::error!("{why}");
            for reply in replies {
                let _ = reply.send(Err(BatchError::Run(why.clone())));
            }
        }
        Err(why) => {
            for reply in replies {
                let _ = reply.send(Err(BatchError::Run(why.clone())));
            }
        }
    }
}

/// Looks of many cameras through one detector: each request a frame or a region of one,
/// each answer its detections as [`crate::Detector::run_requests`] gives them. A model
/// with a batch axis runs the requests of one scale and threshold at once; one without
/// runs them one after another.
impl BatchRun<crate::detector::DetectRequest, Vec<crate::Detection>> for crate::Detector {
    fn run(
        &mut self,
        requests: Vec<crate::detector::DetectRequest>,
    ) -> Result<Vec<Vec<crate::Detection>>, String> {
        self.run_requests(&requests, true)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier, Mutex};

    /// Where the first run stops: it says it has started, then waits to be let go, so a
    /// test can queue requests behind a run in progress.
    #[derive(Clone)]
    struct Hold {
        started: Arc<Barrier>,
        go: Arc<Barrier>,
    }

    impl Hold {
        fn new() -> Self {
            Self {
                started: Arc::new(Barrier::new(2)),
                go: Arc::new(Barrier::new(2)),
            }
        }
    }

    /// Doubles each input; the first run waits at `hold`, if any.
    struct Doubler {
        hold: Option<Hold>,
        fail_on: Option<u32>,
        drop_one: bool,
    }

    impl BatchRun<u32, u32> for Doubler {
        fn run(&mut self, inputs: Vec<u32>) -> Result<Vec<u32>, String> {
            if let Some(h) = self.hold.take() {
                h.started.wait();
                h.go.wait();
            }
            if let Some(bad) = self.fail_on
                && inputs.contains(&bad)
            {
                return Err(format!("input {bad} is not runnable"));
            }
            let mut out: Vec<u32> = inputs.iter().map(|i| i * 2).collect();
            if self.drop_one {
                out.pop();
            }
            Ok(out)
        }
    }

    fn settings(max_batch: usize) -> BatchSettings {
        BatchSettings {
            max_batch,
            max_wait: Duration::from_millis(5),
        }
    }

    #[test]
    fn requests_from_many_cameras_share_runs_and_each_gets_its_own_answer() {
        let hold = Hold::new();
        let sizes: BatchSizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(
            "test",
            Box::new(Doubler {
                hold: Some(hold.clone()),
                fail_on: None,
                drop_one: false,
            }),
            settings(4),
            Some(recorded_in(&sizes)),
        )
        .expect("start");
        // The first request's run is held; nine more queue behind it.
        let first = batcher.submit(0);
        hold.started.wait();
        let later: Vec<_> = (1..=9u32).map(|i| (i, batcher.submit(i))).collect();
        hold.go.wait();
        assert_eq!(first.recv().expect("answer"), Ok(0));
        for (i, rx) in later {
            assert_eq!(rx.recv().expect("answer"), Ok(i * 2), "request {i}");
        }
        drop(batcher);
        let sizes = sizes.lock().expect("sizes").clone();
        assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
        assert!(
            sizes.iter().all(|&s| s <= 4),
            "no batch over its size: {sizes:?}"
        );
        // Behind the held run the nine waiting requests went in full batches.
        assert_eq!(sizes, [1, 4, 4, 1], "{sizes:?}");
    }

    #[test]
    fn a_lone_request_is_run_alone_without_waiting_for_a_full_batch() {
        let sizes: BatchSizes = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::start(
            "lone",
            Box::new(Doubler {
                hold: None,
                fail_on: None,
                drop_one: false,
            }),
            BatchSettings {
                max_batch: 32,
                max_wait: Duration::from_millis(1),
            },
            Some(recorded_in(&sizes)),
        )
        .expect("start");
        assert_eq!(batcher.run(21), Ok(42));
        assert_eq!(sizes.lock().expect("sizes").as_slice(), &[1]);
    }

    #[test]
    fn a_failed_run_fails_its_own_requests_by_name_and_the_next_batches_still_run() {
        let hold = Hold::new();
        let batcher = Batcher::start(
            "fail",
            Box::new(Doubler {
                hold: Some(hold.clone()),
                fail_on: Some(7),
                drop_one: false,
            }),
            settings(2),
            None,
        )
        .expect("start");
        let first = batcher.submit(1);
        hold.started.wait();
        let (a, b) = (batcher.submit(7), batcher.submit(8));
        let c = batcher.submit(3);
        hold.go.wait();
        assert_eq!(first.recv().expect("answer"), Ok(2));
        let failed = BatchError::Run("input 7 is not runnable".into());
        assert_eq!(a.recv().expect("answer"), Err(failed.clone()));
        assert_eq!(b.recv().expect("answer"), Err(failed), "its batch-mate too");
        assert_eq!(c.recv().expect("answer"), Ok(6), "the next batch runs");
    }

    #[test]
    fn a_runner_that_loses_an_output_fails_the_batch_rather_than_shift_the_answers() {
        let batcher = Batcher::start(
            "short",
            Box::new(Doubler {
                hold: None,
                fail_on: None,
                drop_one: true,
            }),
            settings(8),
            None,
        )
        .expect("start");
        let err = batcher.run(5).expect_err("no output for it");
        assert!(
            matches!(&err, BatchError::Run(why) if why.contains("0 outputs for 1 inputs")),
            "{err}"
        );
    }

    #[test]
    fn requests_queued_when_the_batcher_is_dropped_are_still_answered() {
        let hold = Hold::new();
        let batcher = Batcher::start(
            "drop",
            Box::new(Doubler {
                hold: Some(hold.clone()),
                fail_on: None,
                drop_one: false,
            }),
            settings(4),
            None,
        )
        .expect("start");
        let first = batcher.submit(0);
        hold.started.wait();
        let answers: Vec<_> = (1..6u32).map(|i| batcher.submit(i)).collect();
        // Let the held run go only once the batcher is being dropped.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            hold.go.wait()
        });
        drop(batcher);
        assert_eq!(first.recv().expect("answer"), Ok(0));
        releaser.join().expect("release");
        for (i, rx) in (1..6u32).zip(answers) {
            assert_eq!(rx.recv().expect("answer"), Ok(i * 2));
        }
    }
}
