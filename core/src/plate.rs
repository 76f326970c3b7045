//! Vietnamese licence plates: parsing what OCR read into the normalised form.
//!
//! Cars carry one line (`98A-123.45`); motorbikes two (`99-B1` over `123.45`), written
//! normalised as `99B1-123.45`. Facts: shared/reference/vietnam-enforcement.md.

use std::fmt;

/// Series letters in use (no I, J, O, Q, W); R is trailers. Đ is read as D.
const SERIES_LETTERS: &str = "ABCDEFGHKLMNPRSTUVXYZ";

/// The two-letter series a one-line (car) plate may carry: the special series of the
/// reference on plates (joint-venture LD, economic zone KT, diplomatic NG and NN,
/// international QT, CV, DA, RM, TĐ, HC, CD). Every other car series is one letter; a
/// letter and a digit (B1, MĐ1) or the new private two letters (HA) are motorbikes',
/// written on two lines.
const ONE_LINE_PAIRS: [&str; 11] = [
    "LD", "KT", "NG", "NN", "QT", "CV", "DA", "RM", "TD", "HC", "CD",
];

/// The plate's background colour, which says who the vehicle belongs to (Law 36/2024
/// Art. 36): white private, yellow commercial transport, blue state, red military.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateColour {
    White,
    Yellow,
    Blue,
    Red,
}

impl PlateColour {
    pub const ALL: [PlateColour; 4] = [
        PlateColour::White,
        PlateColour::Yellow,
        PlateColour::Blue,
        PlateColour::Red,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PlateColour::White => "white",
            PlateColour::Yellow => "yellow",
            PlateColour::Blue => "blue",
            PlateColour::Red => "red",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plate {
    pub province: String,
    pub series: String,
    pub number: String,
    pub lines: usize,
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = if self.number.len() == 5 {
            format!("{}.{}", &self.number[..3], &self.number[3..])
        } else {
            self.number.clone()
        };
        write!(f, "{}{}-{}", self.province, self.series, number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    #[error("empty")]
    Empty,
    #[error("province code `{0}` is not two digits from 10 to 99")]
    Province(String),
    #[error("series `{0}` is not 1–2 plate letters with an optional digit")]
    Series(String),
    #[error("number `{0}` is not 4 or 5 digits")]
    Number(String),
    #[error("more than two lines")]
    TooManyLines,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == 'Đ' || c == 'đ' {
                'D'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect()
}

fn alnum(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// The character a digit-only position must have been, for the letters OCR confuses with
/// digits (O/D→0, I/L→1, Z→2, S→5, G→6, B→8).
fn as_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        'O' | 'D' | 'Q' => Some('0'),
        'I' | 'L' => Some('1'),
        'Z' => Some('2'),
        'S' => Some('5'),
        'G' => Some('6'),
        'B' => Some('8'),
        _ => None,
    }
}

/// The series letter a letter-only position must have been: the reverse confusions, kept
/// only where one plate letter is possible (0 is O or D, and O is no series letter).
fn as_letter(c: char) -> Option<char> {
    match c {
        'A'..='Z' => Some(c),
        '0' => Some('D'),
        '1' => Some('L'),
        '2' => Some('Z'),
        '5' => Some('S'),
        '6' => Some('G'),
        '8' => Some('B'),
        _ => None,
    }
}

/// Apply `map` to each character of `s`, counting the characters it changed; the
/// original is kept where the map has no answer, for the error to show it.
fn force(s: &str, map: fn(char) -> Option<char>, corrections: &mut usize) -> String {
    s.chars()
        .map(|c| match map(c) {
            Some(m) => {
                *corrections += usize::from(m != c);
                m
            }
            None => c,
        })
        .collect()
}

fn parse_head(
    head: &str,
    one_line: bool,
    corrections: &mut usize,
) -> Result<(String, String), PlateError> {
    // Only the positions the grammar pins are corrected: the two province digits and the
    // series' first letter, and on a one-line plate its second place too, for a car's
    // series is letters only (99LD read 99L0 is 99LD). On a motorbike's plate the second
    // place may hold a letter (29-HA) or a digit (99-B1), so what OCR read there stands.
    let raw = alnum(head);
    let mut chars = raw.chars();
    let province: String = chars.by_ref().take(2).collect();
    let first: String = chars.by_ref().take(1).collect();
    let rest: String = chars.collect();
    let mut fixed = 0;
    let rest = if one_line && rest.chars().count() == 1 {
        force(&rest, as_letter, &mut fixed)
    } else {
        rest
    };
    let head = format!(
        "{}{}{rest}",
        force(&province, as_digit, &mut fixed),
        force(&first, as_letter, &mut fixed)
    );
    *corrections += fixed;
    let Some(province) = head
        .get(..2)
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && *p >= "10")
    else {
        return Err(PlateError::Province(head));
    };
    let series = &head[2..];
    let letters: String = series
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let rest = &series[letters.len()..];
    let ok = (1..=2).contains(&letters.len())
        && letters.chars().all(|c| SERIES_LETTERS.contains(c))
        && rest.len() <= 1
        && rest.chars().all(|c| c.is_ascii_digit())
        && (!one_line || letters.len() == 1 || ONE_LINE_PAIRS.contains(&letters.as_str()));
    if !ok {
        return Err(PlateError::Series(series.into()));
    }
    Ok((province.into(), series.into()))
}

fn parse_number(tail: &str, corrections: &mut usize) -> Result<String, PlateError> {
    let digits = force(&alnum(tail), as_digit, corrections);
    if !(4..=5).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(PlateError::Number(tail.into()));
    }
    // A number is written 1234 or 123.45: a dot anywhere else means a character was
    // lost (409.66 read 09.66 would pass as the old four-digit 0966).
    if let Some((before, after)) = tail.split_once(['.', ',']) {
        let (before, after) = (alnum(before), alnum(after));
        if before.len() != 3 || after.len() != 2 {
            return Err(PlateError::Number(tail.into()));
        }
    }
    Ok(digits)
}

/// Parse a plate from the lines OCR read, top to bottom, correcting the OCR confusions
/// the plate grammar rules out (`98A-l23.4S` → `98A-123.45`).
pub fn parse(lines: &[&str]) -> Result<Plate, PlateError> {
    parse_counting(lines).map(|(plate, _)| plate)
}

/// As [`parse`], with how many characters the grammar corrected (each makes the read less
/// certain).
pub fn parse_counting(lines: &[&str]) -> Result<(Plate, usize), PlateError> {
    parse_lines(lines, false)
}

/// As [`parse_counting`], for lines read off a plate's picture, where one line is the
/// plate's one line: a car's, whose series is letters only (one, or a special pair).
/// A plate written out in its normal form (`99B1-123.45`) is not that: use
/// [`parse_counting`].
pub fn parse_as_read(lines: &[&str]) -> Result<(Plate, usize), PlateError> {
    parse_lines(lines, true)
}

fn parse_lines(lines: &[&str], as_read: bool) -> Result<(Plate, usize), PlateError> {
    // "99-B1 123.45" read as one line is the two lines of a motorbike plate.
    let split: Vec<&str> = match lines {
        [one] if one.split_whitespace().count() == 2 => one.split_whitespace().collect(),
        _ => lines.to_vec(),
    };
    let lines: Vec<String> = split
        .iter()
        .map(|l| clean(l))
        .filter(|l| !l.is_empty())
        .collect();
    let (head, tail) = match lines.as_slice() {
        [] => return Err(PlateError::Empty),
        [one] => split_single_line(one)?,
        [top, bottom] => (top.clone(), bottom.clone()),
        _ => return Err(PlateError::TooManyLines),
    };
    let mut corrections = 0;
    let (province, series) = parse_head(&head, as_read && lines.len() == 1, &mut corrections)?;
    let number = parse_number(&tail, &mut corrections)?;
    Ok((
        Plate {
            province,
            series,
            number,
            lines: lines.len(),
        },
        corrections,
    ))
}

/// Split `98A-123.45` at the dash; without one, take the number as the trailing digits
/// after a letter series (`98A12345` → `98A`, `12345`).
fn split_single_line(line: &str) -> Result<(String, String), PlateError> {
    if let Some((head, tail)) = line.split_once('-') {
        return Ok((head.into(), tail.into()));
    }
    let compact = alnum(line);
    if compact.len() < 7 {
        return Err(PlateError::Number(compact));
    }
    let letters_end = compact
        .char_indices()
        .skip(2)
        .find(|(_, c)| !c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .unwrap_or(compact.len());
    let (head, tail) = compact.split_at(letters_end);
    Ok((head.into(), tail.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(lines: &[&str]) -> String {
        parse(lines)
            .map(|p| p.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn formats_from_the_reference_parse_and_normalise() {
        assert_eq!(norm(&["98A-123.45"]), "98A-123.45");
        assert_eq!(norm(&["51K-123.45"]), "51K-123.45");
        assert_eq!(norm(&["30LD-123.45"]), "30LD-123.45");
        assert_eq!(norm(&["29A-1234"]), "29A-1234");
        assert_eq!(norm(&["99-B1", "123.45"]), "99B1-123.45");
        assert_eq!(norm(&["29-HA", "002.33"]), "29HA-002.33");
        assert_eq!(norm(&["99-B1 123.45"]), "99B1-123.45");
        assert_eq!(norm(&["98a 123.45"]), "98A-123.45");
        assert_eq!(norm(&["98A12345"]), "98A-123.45");
        assert_eq!(norm(&["29-Đ1", "1234"]), "29D1-1234");
    }

    #[test]
    fn ocr_confusions_are_corrected_only_where_the_grammar_forces_it() {
        let counted = |lines: &[&str]| {
            parse_counting(lines)
                .map(|(p, n)| (p.to_string(), n))
                .unwrap_or_else(|e| (format!("error: {e}"), 0))
        };
        // Digits where only digits may stand: province and number.
        assert_eq!(counted(&["98A-l23.4S"]), ("98A-123.45".into(), 2));
        assert_eq!(counted(&["9BA-I23.4S"]), ("98A-123.45".into(), 3));
        // Corrected and still no plate: the reason shows what the grammar made of it.
        assert_eq!(
            parse(&["O2A-123.45"]),
            Err(PlateError::Province("02A".into()))
        );
        assert_eq!(counted(&["29-HA", "OO2.33"]), ("29HA-002.33".into(), 2));
        assert_eq!(counted(&["5lK-Z3G.DB"]), ("51K-236.08".into(), 5));
        // A letter where only a letter may stand: the series' first place.
        assert_eq!(counted(&["988-123.45"]), ("98B-123.45".into(), 1));
        assert_eq!(counted(&["990-123.45"]), ("99D-123.45".into(), 1));
        assert_eq!(counted(&["99-81", "123.45"]), ("99B1-123.45".into(), 1));
        // On a one-line (car) plate the series is letters: a second place read as a
        // digit was a letter, and only the special series have two.
        let read = |lines: &[&str]| {
            parse_as_read(lines)
                .map(|(p, n)| (p.to_string(), n))
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&["99L0-012.46"]), Ok(("99LD-012.46".into(), 1)));
        assert_eq!(read(&["30KT-123.45"]), Ok(("30KT-123.45".into(), 0)));
        assert!(read(&["99A1-123.45"]).is_err_and(|e| e.contains("`AL`")));
        assert!(read(&["99HA-123.45"]).is_err_and(|e| e.contains("`HA`")));
        // Two lines read, or a plate in its normal form, may be a motorbike's.
        assert_eq!(read(&["99-B1", "123.45"]), Ok(("99B1-123.45".into(), 0)));
        assert_eq!(counted(&["99B1-123.45"]), ("99B1-123.45".into(), 0));
        assert_eq!(counted(&["29HA-002.33"]), ("29HA-002.33".into(), 0));
        // On a motorbike's two lines the series' second place may be a letter or a
        // digit: left as read.
        assert_eq!(counted(&["29-HA", "002.33"]), ("29HA-002.33".into(), 0));
        assert_eq!(counted(&["99-B1", "123.45"]), ("99B1-123.45".into(), 0));
        assert_eq!(counted(&["29-H8", "002.33"]), ("29H8-002.33".into(), 0));
        // A clean read needs nothing.
        assert_eq!(counted(&["98A-123.45"]), ("98A-123.45".into(), 0));
        // Letters with no digit look-alike stay wrong, and say so.
        assert_eq!(
            parse(&["98A-12X.45"]),
            Err(PlateError::Number("12X.45".into()))
        );
    }

    #[test]
    fn invalid_plates_are_rejected_with_a_reason() {
        assert_eq!(parse(&["98I-123.45"]), Err(PlateError::Series("I".into())));
        assert_eq!(
            parse(&["9A-123.45"]).unwrap_err(),
            PlateError::Province("9A".into())
        );
        assert_eq!(
            parse(&["98-123.45"]).unwrap_err(),
            PlateError::Series("".into())
        );
        assert_eq!(parse(&["98A-12"]), Err(PlateError::Number("12".into())));
        // Four digits are written without a dot; a dot says a fifth was lost.
        assert_eq!(
            parse(&["61A", "09.66"]),
            Err(PlateError::Number("09.66".into()))
        );
        assert_eq!(
            parse(&["61A-0966"]).map(|p| p.to_string()),
            Ok("61A-0966".into())
        );
        assert_eq!(
            parse(&["61A-40.966"]),
            Err(PlateError::Number("40.966".into()))
        );
        assert_eq!(
            parse(&["98A-123456"]),
            Err(PlateError::Number("123456".into()))
        );
        assert_eq!(
            parse(&["98ABC-123.45"]),
            Err(PlateError::Series("ABC".into()))
        );
        assert!(parse(&["cero emisiones"]).is_err());
        assert_eq!(parse(&[]), Err(PlateError::Empty));
        assert_eq!(parse(&["a", "b", "c"]), Err(PlateError::TooManyLines));
        assert_eq!(
            parse(&["05A-123.45"]),
            Err(PlateError::Province("05A".into()))
        );
    }
}
