//! Batch jobs on the fleet's JetStream: a job (recordings of one camera) is cut into tasks
//! (a recording, or a segment of one), one message each on the work queue `VIGIL_JOBS`
//! with `<job>/<task>` as its message id; every batch worker pulls from the one durable
//! consumer, tells the server it is still at it while it works, and acknowledges a task
//! only once its outcome is stored in KV `vigil_jobs`. A worker killed mid-task leaves it
//! unacknowledged: the server offers it to another after [`ACK_WAIT`]. What is left to do
//! is what is left in the stream; a job survives every process and the server restarting
//! (file storage). The same task done twice records nothing twice (deterministic event
//! ids, idempotent intake).

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, kv, stream};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::FleetError;
use crate::bus::Bus;

pub const JOBS_STREAM: &str = "VIGIL_JOBS";
pub const JOBS_SUBJECT: &str = "vigil.jobs.tasks";
pub const JOBS_BUCKET: &str = "vigil_jobs";
/// The durable consumer every batch worker pulls from.
pub const WORKERS: &str = "batch";
/// A task not acknowledged nor reported in progress for this long goes to another worker.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often a worker tells the server it is still on its task.
pub const STILL_WORKING: Duration = Duration::from_secs(5);

/// A job: what was asked, and how many tasks it was cut into.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub camera_id: String,
    /// The camera config's text (the job does not depend on a file on the submitter).
    pub camera_config: String,
    pub recordings: Vec<String>,
    pub tasks: u32,
    pub motion_gating: bool,
    pub submitted_at: DateTime<Utc>,
}

/// A part of a recording, in milliseconds of the recording (see the pipeline's segments).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskSegment {
    pub index: usize,
    pub keep_from_ms: u64,
    /// `None`: to the recording's end.
    pub keep_until_ms: Option<u64>,
    pub decode_from_ms: u64,
    pub decode_until_ms: Option<u64>,
}

/// One task of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub job: String,
    pub task: u32,
    /// The recording, as every worker sees it (shared storage).
    pub recording: String,
    /// Wall-clock time of the recording's first frame.
    pub started_at: DateTime<Utc>,
    pub segment: Option<TaskSegment>,
}

/// What became of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Outcome {
    pub task: u32,
    pub worker: String,
    pub frames: u64,
    pub violations: u64,
    pub sightings: u64,
    /// Why it failed, by name; a failed task is done (it failed on what it is, and
    /// another try would fail alike), the job goes on.
    pub error: Option<String>,
    pub seconds: f64,
    pub finished_at: DateTime<Utc>,
}

/// A job as it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub job: Job,
    pub done: Vec<Outcome>,
    /// Tasks waiting or in work.
    pub left: u32,
    pub frames: u64,
    pub violations: u64,
}

impl Progress {
    pub fn finished(&self) -> bool {
        self.left == 0
    }
    pub fn failed(&self) -> impl Iterator<Item = &Outcome> {
        self.done.iter().filter(|o| o.error.is_some())
    }
}

/// The job queue on a fleet's bus.
#[derive(Clone)]
pub struct Jobs {
    bus: Bus,
    kv: kv::Store,
}

fn nats(what: &str) -> impl Fn(&dyn std::fmt::Display) -> FleetError + '_ {
    move |e| FleetError::Nats(format!("{what}: {e}"))
}

fn done_key(job: &str, task: u32) -> String {
    format!("done.{job}.{task}")
}

fn job_key(job: &str) -> String {
    format!("job.{job}")
}

/// A job id is a KV key part and a subject-safe message id.
pub fn check_job_id(id: &str) -> Result<(), FleetError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(FleetError::Settings(format!(
            "job id `{id}`: 1 to 64 letters, digits, `-` or `_`"
        )));
    }
    Ok(())
}

impl Jobs {
    /// The queue and its bucket, made if they are not there.
    pub async fn open(bus: &Bus) -> Result<Self, FleetError> {
        bus.js
            .get_or_create_stream(stream::Config {
                name: JOBS_STREAM.into(),
                subjects: vec![JOBS_SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(3600),
                ..Default::default()
            })
            .await
            .map_err(|e| nats(JOBS_STREAM)(&e))?;
        let kv = crate::bus::ensure_kv(
            &bus.js,
            kv::Config {
                bucket: JOBS_BUCKET.into(),
                history: 1,
                ..Default::default()
            },
        )
        .await?;
        Ok(Self {
            bus: bus.clone(),
            kv,
        })
    }

    /// Put a job and its tasks on the queue. Submitting the same job id again adds
    /// nothing the server still remembers (message ids), and never redoes a done task.
    pub async fn submit(&self, job: &Job, tasks: &[Task]) -> Result<(), FleetError> {
        check_job_id(&job.id)?;
        let bytes = serde_json::to_vec(job).map_err(|e| nats("job")(&e))?;
        self.kv
            .put(job_key(&job.id), bytes.into())
            .await
            .map_err(|e| nats("job")(&e))?;
        for task in tasks {
            if self
                .kv
                .get(done_key(&job.id, task.task))
                .await
                .map_err(|e| nats("job")(&e))?
                .is_some()
            {
                continue;
            }
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{}/{}", job.id, task.task).as_str());
            let payload = serde_json::to_vec(task).map_err(|e| nats("task")(&e))?;
            self.bus
                .js
                .publish_with_headers(JOBS_SUBJECT, headers, payload.into())
                .await
                .map_err(|e| nats("task")(&e))?
                .await
                .map_err(|e| nats("task")(&e))?;
        }
        Ok(())
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>, FleetError> {
        match self
            .kv
            .get(job_key(id))
            .await
            .map_err(|e| nats("job")(&e))?
        {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    /// Every job on the queue, newest first, as it stands.
    pub async fn all(&self) -> Result<Vec<Progress>, FleetError> {
        let mut ids = Vec::new();
        let mut keys = self.kv.keys().await.map_err(|e| nats("job")(&e))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| nats("job")(&e))?;
            if let Some(id) = key.strip_prefix("job.") {
                ids.push(id.to_string());
            }
        }
        let mut all = Vec::new();
        for id in ids {
            if let Some(p) = self.progress(&id).await? {
                all.push(p);
            }
        }
        all.sort_by(|a, b| b.job.submitted_at.cmp(&a.job.submitted_at));
        Ok(all)
    }

    /// Where a job stands.
    pub async fn progress(&self, id: &str) -> Result<Option<Progress>, FleetError> {
        let Some(job) = self.job(id).await? else {
            return Ok(None);
        };
        let prefix = format!("done.{id}.");
        let mut done = Vec::new();
        let mut keys = self.kv.keys().await.map_err(|e| nats("job")(&e))?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| nats("job")(&e))?;
            if !key.starts_with(&prefix) {
                continue;
            }
            if let Some(bytes) = self.kv.get(&key).await.map_err(|e| nats("job")(&e))?
                && let Ok(o) = serde_json::from_slice::<Outcome>(&bytes)
            {
                done.push(o);
            }
        }
        done.sort_by_key(|o| o.task);
        Ok(Some(Progress {
            left: job.tasks.saturating_sub(done.len() as u32),
            frames: done.iter().map(|o| o.frames).sum(),
            violations: done.iter().map(|o| o.violations).sum(),
            job,
            done,
        }))
    }

    async fn consumer(&self) -> Result<PullConsumer, FleetError> {
        let stream = self
            .bus
            .js
            .get_stream(JOBS_STREAM)
            .await
            .map_err(|e| nats(JOBS_STREAM)(&e))?;
        stream
            .get_or_create_consumer(
                WORKERS,
                pull::Config {
                    durable_name: Some(WORKERS.into()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats(WORKERS)(&e))
    }

    /// The next task, waiting up to `wait`; `None` when there is none.
    pub async fn next(&self, wait: Duration) -> Result<Option<Claimed>, FleetError> {
        let consumer = self.consumer().await?;
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| nats(WORKERS)(&e))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| nats(WORKERS)(&e))?;
            match serde_json::from_slice::<Task>(&message.payload) {
                Ok(task) => {
                    return Ok(Some(Claimed {
                        task,
                        message,
                        kv: self.kv.clone(),
                    }));
                }
                Err(e) => {
                    tracing::error!(error = %e, "not a batch task: dropped");
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
        }
        Ok(None)
    }
}

/// A task a worker holds.
pub struct Claimed {
    pub task: Task,
    message: jetstream::Message,
    kv: kv::Store,
}

impl Claimed {
    /// Tell the server every [`STILL_WORKING`] that the task is in work (so it is not
    /// offered to another worker), until the returned task is aborted.
    pub fn keep_alive(&self, runtime: &tokio::runtime::Handle) -> tokio::task::JoinHandle<()> {
        let message = self.message.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(STILL_WORKING).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        })
    }

    /// Store the outcome, then take the task off the queue.
    pub async fn done(self, outcome: Outcome) -> Result<(), FleetError> {
        let bytes = serde_json::to_vec(&outcome).map_err(|e| nats("outcome")(&e))?;
        self.kv
            .put(done_key(&self.task.job, self.task.task), bytes.into())
            .await
            .map_err(|e| nats("outcome")(&e))?;
        self.message
            .double_ack()
            .await
            .map_err(|e| nats("outcome")(&e))?;
        Ok(())
    }

    /// Not done here (the worker is stopping): offered to another worker at once.
    pub async fn give_back(self) {
        let _ = self.message.ack_with(AckKind::Nak(None)).await;
    }
}
