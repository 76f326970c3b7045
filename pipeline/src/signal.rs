//! Traffic-signal state: from the signal head's pixels, or from a fixed-time schedule.

use std::time::Duration;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::config::{Phase, SignalConfig};

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

pub enum SignalSource {
    Region(RegionClassifier),
    Schedule { phases: Vec<Phase>, offset: f64 },
}

impl SignalSource {
    pub fn from_config(config: &SignalConfig) -> Self {
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
        }
    }

    pub fn state(&self, frame: &RgbImage, pts: Duration) -> SignalState {
        match self {
            SignalSource::Region(c) => c.classify(frame),
            SignalSource::Schedule { phases, offset } => {
                schedule_state(phases, *offset, pts.as_secs_f64())
            }
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

/// Classifies the lit lamp of a signal head from the colour of its brightest pixels.
pub struct RegionClassifier {
    pub region: [u32; 4],
}

impl RegionClassifier {
    pub fn classify(&self, frame: &RgbImage) -> SignalState {
        let [x, y, w, h] = self.region;
        if x + w > frame.width() || y + h > frame.height() {
            return SignalState::Unknown;
        }
        // A lit lamp is far brighter and more saturated than the housing and the dark lamps.
        let mut lit: Vec<[f32; 3]> = Vec::new();
        for py in y..y + h {
            for px in x..x + w {
                let p = frame.get_pixel(px, py).0.map(f32::from);
                let max = p[0].max(p[1]).max(p[2]);
                let min = p[0].min(p[1]).min(p[2]);
                if max >= 150.0 && (max - min) / max >= 0.45 {
                    lit.push(p);
                }
            }
        }
        if lit.len() < ((w * h) as usize / 100).max(4) {
            return SignalState::Unknown;
        }
        let n = lit.len() as f32;
        let [r, g, b] = lit
            .iter()
            .fold([0.0; 3], |a, p| [a[0] + p[0], a[1] + p[1], a[2] + p[2]])
            .map(|v| v / n);
        if g > r && g > b {
            SignalState::Green
        } else if r > g && g / r >= 0.45 {
            SignalState::Amber
        } else if r > g && r > b {
            SignalState::Red
        } else {
            SignalState::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn head(lit: Rgb<u8>) -> RgbImage {
        let mut img = RgbImage::from_pixel(40, 100, Rgb([30, 30, 30]));
        for y in 10..30 {
            for x in 10..30 {
                img.put_pixel(x, y, lit);
            }
        }
        img
    }

    #[test]
    fn classifies_lit_lamp_colours() {
        let c = RegionClassifier {
            region: [0, 0, 40, 100],
        };
        assert_eq!(c.classify(&head(Rgb([255, 40, 30]))), SignalState::Red);
        assert_eq!(c.classify(&head(Rgb([255, 170, 0]))), SignalState::Amber);
        assert_eq!(c.classify(&head(Rgb([40, 230, 90]))), SignalState::Green);
        // Everything dark: no lamp lit (a failed signal or night without exposure).
        assert_eq!(c.classify(&head(Rgb([60, 20, 20]))), SignalState::Unknown);
        // A region outside the frame cannot be read.
        let off = RegionClassifier {
            region: [30, 0, 40, 100],
        };
        assert_eq!(
            off.classify(&head(Rgb([255, 40, 30]))),
            SignalState::Unknown
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
