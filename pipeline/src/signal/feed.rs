//! The signal controller's own feed: the phase the controller has set, polled over HTTP.
//!
//! A camera that cannot see its signal head well (buses in front, glare, night) is better
//! served by the controller itself, which knows to the millisecond when red began. The
//! feed is a URL answering `{"state": "red" | "amber" | "green", "since": "<RFC 3339>"}`;
//! `since` (when the controller set that state) is optional. A feed that stops answering
//! is never trusted past `stale_ms`: the state is then unknown, and no red-light case can
//! be made from it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use vigil_core::Clock;

use super::SignalState;

#[derive(Debug, Deserialize)]
struct Reading {
    state: SignalState,
    since: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct Log {
    /// (when the controller set it, state), oldest first.
    changes: VecDeque<(DateTime<Utc>, SignalState)>,
    /// When the feed last answered well.
    last_ok: Option<DateTime<Utc>>,
    /// Why the last poll failed, if it did (logged once per failure spell).
    failing: Option<String>,
}

impl Log {
    const KEEP: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

    fn record(&mut self, now: DateTime<Utc>, reading: Reading) {
        let since = reading.since.unwrap_or(now).min(now);
        match self.changes.back() {
            Some(&(_, s)) if s == reading.state => {}
            _ => self.changes.push_back((since, reading.state)),
        }
        self.last_ok = Some(now);
        while self.changes.len() > 1 && self.changes[1].0 + Self::KEEP < now {
            self.changes.pop_front();
        }
    }

    fn at(&self, t: DateTime<Utc>, stale: chrono::TimeDelta) -> SignalState {
        // Only a feed that answered around `t` speaks for `t`.
        if self.last_ok.is_none_or(|ok| ok + stale < t) {
            return SignalState::Unknown;
        }
        self.changes
            .iter()
            .rev()
            .find(|(since, _)| *since <= t)
            .map(|&(_, s)| s)
            .unwrap_or(SignalState::Unknown)
    }
}

/// A background poller of one controller's feed.
pub struct ControllerFeed {
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    stale: chrono::TimeDelta,
}

impl ControllerFeed {
    /// Start polling `url` every `poll`; readings older than `stale` are not trusted.
    /// Readings are timed on `clock`.
    pub fn start(url: &str, poll: Duration, stale: Duration, clock: Arc<dyn Clock>) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_log, thread_stop, url) = (log.clone(), stop.clone(), url.to_string());
        let spawned = std::thread::Builder::new()
            .name("signal-feed".into())
            .spawn(move || poll_loop(&url, poll, &thread_log, &thread_stop, clock.as_ref()));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the signal feed's poller");
        }
        Self {
            log,
            stop,
            stale: chrono::TimeDelta::from_std(stale).unwrap_or(chrono::TimeDelta::seconds(2)),
        }
    }

    /// The controller's state at wall-clock time `t`.
    pub fn state_at(&self, t: DateTime<Utc>) -> SignalState {
        match self.log.lock() {
            Ok(log) => log.at(t, self.stale),
            Err(_) => SignalState::Unknown,
        }
    }
}

impl Drop for ControllerFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn poll_loop(url: &str, poll: Duration, log: &Mutex<Log>, stop: &AtomicBool, clock: &dyn Clock) {
    let client = match reqwest::blocking::Client::builder()
        .timeout(poll.max(Duration::from_millis(200)) * 4)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "signal feed: cannot build an HTTP client");
            return;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let result = client
            .get(url)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())
            .and_then(|r| {
                r.json::<Reading>()
                    .map_err(|e| format!("not a signal reading: {e}"))
            });
        let now = clock.now();
        if let Ok(mut log) = log.lock() {
            match result {
                Ok(reading) => {
                    if log.failing.take().is_some() {
                        tracing::info!(url, "signal feed answering again");
                    }
                    log.record(now, reading);
                }
                Err(e) => {
                    if log.failing.is_none() {
                        tracing::warn!(url, error = %e, "signal feed failed; the signal is unknown until it answers");
                    }
                    log.failing = Some(e);
                }
            }
        }
        clock.sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use vigil_core::SystemClock;

    /// A stand-in controller on 127.0.0.1: answers every request with the body `current`
    /// holds (an empty body: a 503).
    fn controller(current: Arc<Mutex<String>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/signal", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body = current.lock().unwrap().clone();
                let head = if body.is_empty() {
                    "503 Service Unavailable"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    fn wait_for(feed: &ControllerFeed, want: SignalState) {
        for _ in 0..100 {
            if feed.state_at(Utc::now()) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the feed never read {want:?}");
    }

    #[test]
    fn the_feed_gives_the_controllers_state_from_when_it_was_set() {
        let red_since = Utc::now() - chrono::TimeDelta::milliseconds(1500);
        let body = Arc::new(Mutex::new(format!(
            r#"{{"state": "red", "since": "{}"}}"#,
            red_since.to_rfc3339()
        )));
        let url = controller(body.clone());
        let feed = ControllerFeed::start(
            &url,
            Duration::from_millis(20),
            Duration::from_secs(1),
            Arc::new(SystemClock),
        );
        wait_for(&feed, SignalState::Red);
        // Red is known from the controller's own time, before the first poll.
        assert_eq!(
            feed.state_at(red_since + chrono::TimeDelta::milliseconds(10)),
            SignalState::Red
        );
        assert_eq!(
            feed.state_at(red_since - chrono::TimeDelta::milliseconds(10)),
            SignalState::Unknown
        );
        *body.lock().unwrap() = r#"{"state": "green"}"#.into();
        wait_for(&feed, SignalState::Green);
    }

    #[test]
    fn a_feed_that_fails_or_talks_nonsense_is_unknown_once_stale() {
        let body = Arc::new(Mutex::new(r#"{"state": "red"}"#.to_string()));
        let url = controller(body.clone());
        let feed = ControllerFeed::start(
            &url,
            Duration::from_millis(20),
            Duration::from_millis(200),
            Arc::new(SystemClock),
        );
        wait_for(&feed, SignalState::Red);
        *body.lock().unwrap() = String::new(); // 503 from now on
        wait_for(&feed, SignalState::Unknown);
        *body.lock().unwrap() = r#"{"state": "purple"}"#.into();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(feed.state_at(Utc::now()), SignalState::Unknown);
        // Nothing listening at all.
        let dead = ControllerFeed::start(
            "http://127.0.0.1:9/signal",
            Duration::from_millis(20),
            Duration::from_millis(200),
            Arc::new(SystemClock),
        );
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(dead.state_at(Utc::now()), SignalState::Unknown);
    }
}
