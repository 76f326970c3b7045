//! Traffic-signal state: from the signal head's pixels, a fixed-time schedule, or the
//! controller's own feed ([`feed`]). The `[signal]` section of a camera config is here too,
//! with its checks.

pub mod feed;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use vigil_core::Clock;

use crate::config::ConfigError;
use crate::rules::{Check, MAX_SECONDS};
use feed::ControllerFeed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalState {
    Red,
    Amber,
    Green,
    Unknown,
}

impl SignalState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SignalState::Red => "red",
            SignalState::Amber => "amber",
            SignalState::Green => "green",
            SignalState::Unknown => "unknown",
        }
    }
}

/// Where the signal state comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalConfig {
    /// The signal head is in the picture: classify the lit lamp by colour.
    Region {
        /// x, y, width, height in pixels.
        region: [u32; 4],
    },
    /// A fixed-time controller: phases repeat from `offset_seconds` into the video.
    Schedule {
        phases: Vec<Phase>,
        #[serde(default)]
        offset_seconds: f64,
    },
    /// The signal controller's feed, polled over HTTP (live cameras).
    Controller {
        /// Answers `{"state": "red"|"amber"|"green", "since": "<RFC 3339>"}`.
        url: String,
        #[serde(default = "default_poll_ms")]
        poll_ms: u64,
        /// A reading older than this says nothing: the state is unknown.
        #[serde(default = "default_stale_ms")]
        stale_ms: u64,
        /// How far the camera's picture lags real time (encoder, network buffering):
        /// each frame is matched with the controller's state this much earlier.
        #[serde(default)]
        camera_latency_ms: u64,
    },
}

fn default_poll_ms() -> u64 {
    200
}

fn default_stale_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub state: SignalState,
    pub seconds: f64,
}

impl SignalConfig {
    pub fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        match self {
            SignalConfig::Region { region } => {
                check.points(
                    "region",
                    &[
                        [region[0] as f32, region[1] as f32],
                        [region[2] as f32, region[3] as f32],
                    ],
                )?;
                if region[2] == 0 || region[3] == 0 {
                    return Err(check.invalid("region", "width and height must be positive"));
                }
                Ok(())
            }
            SignalConfig::Schedule {
                phases,
                offset_seconds,
            } => {
                if phases.is_empty() {
                    return Err(check.invalid("phases", "needs at least one phase"));
                }
                for (i, p) in phases.iter().enumerate() {
                    check.positive(&format!("phases[{i}].seconds"), p.seconds, 3_600.0, "s")?;
                }
                check.within(
                    "offset_seconds",
                    *offset_seconds,
                    -MAX_SECONDS..=MAX_SECONDS,
                    "s",
                )
            }
            SignalConfig::Controller {
                url,
                poll_ms,
                stale_ms,
                camera_latency_ms,
            } => {
                match url::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    Ok(u) => {
                        return Err(check.invalid(
                            "url",
                            format!("scheme {} is not http or https", u.scheme()),
                        ));
                    }
                    Err(e) => return Err(check.invalid("url", format!("{url:?}: {e}"))),
                }
                check.within("poll_ms", *poll_ms as f64, 20.0..=60_000.0, "ms")?;
                check.within("stale_ms", *stale_ms as f64, 1.0..=600_000.0, "ms")?;
                check.within(
                    "camera_latency_ms",
                    *camera_latency_ms as f64,
                    0.0..=60_000.0,
                    "ms",
                )
            }
        }
    }

    /// Whether the signal head's region fits a `width`×`height` frame.
    pub fn check_frame_size(
        &self,
        check: &Check,
        width: u32,
        height: u32,
    ) -> Result<(), ConfigError> {
        if let SignalConfig::Region {
            region: [x, y, rw, rh],
        } = *self
            && (x.saturating_add(rw) > width || y.saturating_add(rh) > height)
        {
            return Err(check.invalid("region", format!("lies outside the {width}x{height} frame")));
        }
        Ok(())
    }
}

pub enum SignalSource {
    Region(RegionClassifier),
    Schedule {
        phases: Vec<Phase>,
        offset: f64,
    },
    Controller {
        feed: ControllerFeed,
        latency: chrono::TimeDelta,
    },
}

impl SignalSource {
    pub fn from_config(config: &SignalConfig, clock: Arc<dyn Clock>) -> Self {
        match config {
            SignalConfig::Region { region } => {
                SignalSource::Region(RegionClassifier { region: *region })
            }
            SignalConfig::Schedule {
                phases,
                offset_seconds,
            } => SignalSource::Schedule {
                phases: phases.clone(),
                offset: *offset_seconds,
            },
            SignalConfig::Controller {
                url,
                poll_ms,
                stale_ms,
                camera_latency_ms,
            } => SignalSource::Controller {
                feed: ControllerFeed::start(
                    url,
                    Duration::from_millis(*poll_ms),
                    Duration::from_millis(*stale_ms),
                    clock,
                ),
                latency: chrono::TimeDelta::milliseconds(*camera_latency_ms as i64),
            },
        }
    }

    /// The state on a frame; `wall` is the frame's wall-clock time, when known (a
    /// controller's feed is matched by it).
    pub fn state(
        &self,
        frame: &RgbImage,
        pts: Duration,
        wall: Option<DateTime<Utc>>,
    ) -> SignalState {
        match self {
            SignalSource::Region(c) => c.classify(frame),
            SignalSource::Schedule { phases, offset } => {
                schedule_state(phases, *offset, pts.as_secs_f64())
            }
            SignalSource::Controller { feed, latency } => wall
                .map(|t| feed.state_at(t - *latency))
                .unwrap_or(SignalState::Unknown),
        }
    }
}

fn schedule_state(phases: &[Phase], offset: f64, t: f64) -> SignalState {
    let cycle: f64 = phases.iter().map(|p| p.seconds).sum();
    if cycle <= 0.0 {
        return SignalState::Unknown;
    }
    let mut into = (t - offset).rem_euclid(cycle);
    for p in phases {
        if into < p.seconds {
            return p.state;
        }
        into -= p.seconds;
    }
    SignalState::Unknown
}

/// Reads a vertical signal head (red lamp on top, amber in the middle, green at the
/// bottom) from its pixels.
///
/// The head's own structure is the check against being fooled: a dark housing with one
/// lamp lit, in the colour of that lamp's place. A vehicle passing in front replaces the
/// housing with its body (and a red or yellow car would otherwise light up "lamps"), so
/// when too much of the region is neither housing nor lamp, or light comes from the
/// wrong place or in the wrong colour, the state is unknown, never a guess.
pub struct RegionClassifier {
    pub region: [u32; 4],
}

/// Share of the region that may be neither dark housing nor lit lamp (edges blurred by
/// compression, a bird, a thin pole) before the head counts as hidden.
const MAX_FOREIGN: f32 = 0.2;
/// Share of the lit pixels that must lie in one lamp's third of the head.
const MIN_IN_ONE_LAMP: f32 = 0.8;

impl RegionClassifier {
    pub fn classify(&self, frame: &RgbImage) -> SignalState {
        let [x, y, w, h] = self.region;
        if x.saturating_add(w) > frame.width() || y.saturating_add(h) > frame.height() || h < 3 {
            return SignalState::Unknown;
        }
        // Per lamp (top, middle, bottom): lit pixels and their summed colour.
        let mut lit = [(0usize, [0.0f32; 3]); 3];
        let mut foreign = 0usize;
        for py in y..y + h {
            let slot = (((py - y) * 3) / h).min(2) as usize;
            for px in x..x + w {
                let p = frame.get_pixel(px, py).0.map(f32::from);
                let max = p[0].max(p[1]).max(p[2]);
                let min = p[0].min(p[1]).min(p[2]);
                if max >= 150.0 && (max - min) / max >= 0.45 {
                    lit[slot].0 += 1;
                    for (sum, v) in lit[slot].1.iter_mut().zip(p) {
                        *sum += v;
                    }
                } else if max >= 100.0 {
                    foreign += 1;
                }
            }
        }
        let area = (w * h) as usize;
        if foreign as f32 > area as f32 * MAX_FOREIGN {
            return SignalState::Unknown;
        }
        let total: usize = lit.iter().map(|l| l.0).sum();
        if total < (area / 100).max(4) {
            return SignalState::Unknown;
        }
        let Some((slot, &(n, sum))) = lit.iter().enumerate().max_by_key(|(_, l)| l.0) else {
            return SignalState::Unknown;
        };
        if (n as f32) < total as f32 * MIN_IN_ONE_LAMP {
            return SignalState::Unknown;
        }
        let [r, g, b] = sum.map(|v| v / n as f32);
        let colour = if g > r && g > b {
            SignalState::Green
        } else if r > g && g / r >= 0.45 {
            SignalState::Amber
        } else if r > g && r > b {
            SignalState::Red
        } else {
            SignalState::Unknown
        };
        let place = [SignalState::Red, SignalState::Amber, SignalState::Green][slot];
        if colour == place {
            colour
        } else {
            SignalState::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const RED: Rgb<u8> = Rgb([255, 40, 30]);
    const AMBER: Rgb<u8> = Rgb([255, 170, 0]);
    const GREEN: Rgb<u8> = Rgb([40, 230, 90]);

    /// A 40×99 head, dark housing, with `colour` lit in lamp `slot` (0 top .. 2 bottom).
    fn head(slot: u32, colour: Rgb<u8>) -> RgbImage {
        let mut img = RgbImage::from_pixel(40, 99, Rgb([30, 30, 30]));
        for y in 8 + 33 * slot..25 + 33 * slot {
            for x in 11..28 {
                img.put_pixel(x, y, colour);
            }
        }
        img
    }

    /// Paint rows `rows` of the image with a vehicle's body colour.
    fn cover(mut img: RgbImage, rows: std::ops::Range<u32>, body: Rgb<u8>) -> RgbImage {
        for y in rows {
            for x in 0..img.width() {
                img.put_pixel(x, y, body);
            }
        }
        img
    }

    fn classifier() -> RegionClassifier {
        RegionClassifier {
            region: [0, 0, 40, 99],
        }
    }

    #[test]
    fn classifies_the_lit_lamp_by_colour_and_place() {
        let c = classifier();
        assert_eq!(c.classify(&head(0, RED)), SignalState::Red);
        assert_eq!(c.classify(&head(1, AMBER)), SignalState::Amber);
        assert_eq!(c.classify(&head(2, GREEN)), SignalState::Green);
        // Everything dark: no lamp lit (a failed signal or night without exposure).
        assert_eq!(
            c.classify(&head(0, Rgb([60, 20, 20]))),
            SignalState::Unknown
        );
        // Light of the wrong colour for its place is not a lamp.
        assert_eq!(c.classify(&head(2, RED)), SignalState::Unknown);
        assert_eq!(c.classify(&head(0, GREEN)), SignalState::Unknown);
        // A region outside the frame cannot be read.
        let off = RegionClassifier {
            region: [30, 0, 40, 100],
        };
        assert_eq!(off.classify(&head(0, RED)), SignalState::Unknown);
    }

    #[test]
    fn a_vehicle_in_front_of_the_head_makes_it_unknown_never_a_colour() {
        let c = classifier();
        let white_bus = Rgb([225, 228, 230]);
        let blue_bus = Rgb([30, 80, 200]);
        let red_car = Rgb([210, 30, 35]);
        // Green lit, the lower half hidden by a white bus: not "no lamp", not a colour.
        assert_eq!(
            c.classify(&cover(head(2, GREEN), 50..99, white_bus)),
            SignalState::Unknown
        );
        // Green lit, a blue bus over the lower two thirds.
        assert_eq!(
            c.classify(&cover(head(2, GREEN), 33..99, blue_bus)),
            SignalState::Unknown
        );
        // A red car over the green lamp's half while the red lamp is dark: red light
        // everywhere but the top, never "red".
        assert_eq!(
            c.classify(&cover(head(2, GREEN), 40..99, red_car)),
            SignalState::Unknown
        );
        // The whole head behind a red car.
        assert_eq!(
            c.classify(&cover(head(0, RED), 0..99, red_car)),
            SignalState::Unknown
        );
        // A thin strip (a pole, a cable) does not hide it.
        assert_eq!(
            c.classify(&cover(head(0, RED), 90..96, white_bus)),
            SignalState::Red
        );
    }

    #[test]
    fn schedule_repeats_its_cycle_from_the_offset() {
        let phases = vec![
            Phase {
                state: SignalState::Green,
                seconds: 3.0,
            },
            Phase {
                state: SignalState::Amber,
                seconds: 1.0,
            },
            Phase {
                state: SignalState::Red,
                seconds: 4.0,
            },
        ];
        assert_eq!(schedule_state(&phases, 0.0, 0.0), SignalState::Green);
        assert_eq!(schedule_state(&phases, 0.0, 3.5), SignalState::Amber);
        assert_eq!(schedule_state(&phases, 0.0, 7.9), SignalState::Red);
        assert_eq!(schedule_state(&phases, 0.0, 8.0), SignalState::Green);
        assert_eq!(schedule_state(&phases, 2.0, 1.0), SignalState::Red);
    }
}
