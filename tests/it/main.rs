//! The `vigil` binary and the pipeline on the real stack (GStreamer, the shipped models,
//! gst-rtsp-server on 127.0.0.1, SQLite and PostgreSQL, Chromium), as one test binary.

mod common;

mod cli;
mod crash;
mod decode;
mod detect_and_read;
mod eval_and_plate;
mod fleet;
mod footage;
mod helmet;
mod jobs;
mod live;
mod live_run;
mod red_light;
mod remote_worker;
mod run_cli;
mod serve;
mod web;
