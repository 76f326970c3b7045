//! A byte mutator in the manner of libFuzzer's: stacked flips, inserts, deletions,
//! truncations, splices with another seed and, for text formats, numbers and tokens
//! swapped for the values parsers get wrong (huge, negative, NaN, empty, very long).
//! Seeded, so a short run in the suite tries the same inputs every time.

/// SplitMix64: small, fast, and reproducible from one `u64`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values that have broken parsers and arithmetic before: overflow at every width, the
/// floats that are not numbers, negative zero, a year out of range, an empty string.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.5",
    "-0.0",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "2.0",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "100000",
    "1900",
    "9999",
    "\"\"",
    "[]",
    "{}",
    "null",
    "true",
];

/// Pieces of the formats read (TOML, JSON, plates, paths) to splice in.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    ":",
    "\"",
    "'",
    "\n",
    "[[",
    "]]",
    "\\u0000",
    "../",
    "/etc/passwd",
    "%2e%2e/",
    "-",
    ".",
    "\u{0110}",
    "\u{202e}",
    "\u{fffd}",
    "O",
    "I",
    "l",
    "S",
    "B",
    "2025-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
];

/// How one input is made from the seeds.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Text formats get number and token swaps; binary ones only byte-level changes.
    pub text: bool,
    /// Inputs are never grown past this many bytes.
    pub max_len: usize,
}

/// Make one input from `seeds` (at least one), with one to five stacked mutations.
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], shape: Shape) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    let rounds = 1 + rng.below(5);
    for _ in 0..rounds {
        mutate_once(rng, &mut data, seeds, shape);
    }
    data.truncate(shape.max_len);
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], shape: Shape) {
    let ops = if shape.text { 11 } else { 8 };
    match rng.below(ops) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = rng.next_u64() as u8;
        }
        2 => {
            let i = rng.below(data.len() + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(i..i, bytes);
        }
        3 if !data.is_empty() => {
            let i = rng.below(data.len());
            let n = 1 + rng.below((data.len() - i).min(64));
            data.drain(i..i + n);
        }
        4 if !data.is_empty() => {
            // Cut short, as a copy interrupted or a file truncated.
            let at = rng.below(data.len());
            data.truncate(at);
        }
        5 if !data.is_empty() => {
            // Repeat a run, as a stuttering writer does; what grows lists and strings.
            let i = rng.below(data.len());
            let n = 1 + rng.below((data.len() - i).min(256));
            let run = data[i..i + n].to_vec();
            let times = 1 + rng.below(16);
            for _ in 0..times {
                data.splice(i..i, run.iter().copied());
            }
        }
        6 => {
            // Splice: this input's head on another seed's tail.
            let other = &seeds[rng.below(seeds.len())];
            let cut = rng.below(data.len() + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        7 if data.len() >= 4 => {
            // A 32-bit field (an MP4 box size, a length) set to an edge value.
            let i = rng.below(data.len() - 3);
            let v: u32 = match rng.below(5) {
                0 => 0,
                1 => 1,
                2 => u32::MAX,
                3 => 0x7FFF_FFFF,
                _ => rng.next_u64() as u32,
            };
            data[i..i + 4].copy_from_slice(&v.to_be_bytes());
        }
        8 => replace_number(rng, data),
        9 => {
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            let i = rng.below(data.len() + 1);
            data.splice(i..i, token.iter().copied());
        }
        10 => {
            // A very long string where a short one belongs.
            let i = rng.below(data.len() + 1);
            let n = 1 << (6 + rng.below(12));
            let c = b"A9.-_\"\\"[rng.below(7)];
            data.splice(i..i, std::iter::repeat_n(c, n));
        }
        _ => {}
    }
}

/// Swap the digits of one number in the text for an edge value.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
        .collect();
    let value = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
    if starts.is_empty() {
        let i = rng.below(data.len() + 1);
        data.splice(i..i, value.iter().copied());
        return;
    }
    let start = starts[rng.below(starts.len())];
    let mut end = start;
    while end < data.len() && (data[end].is_ascii_digit() || data[end] == b'.') {
        end += 1;
    }
    data.splice(start..end, value.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs_and_another_seed_other_ones() {
        let seeds = vec![b"size = 640\nname = \"x\"\n".to_vec()];
        let shape = Shape {
            text: true,
            max_len: 4096,
        };
        let run = |s| {
            let mut rng = Rng::new(s);
            (0..50)
                .map(|_| mutate(&mut rng, &seeds, shape))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().any(|m| m != &seeds[0]));
        assert!(run(7).iter().all(|m| m.len() <= 4096));
    }
}
