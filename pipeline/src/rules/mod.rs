//! Violation rules, each deciding from tracks (and the signal) in image geometry.

pub mod red_light;

pub use red_light::{Crossing, RedLightRule};
