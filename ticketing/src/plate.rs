//! Vietnamese licence plates: parsing what OCR read into the normalised form.
//!
//! Cars carry one line (`98A-123.45`); motorbikes two (`99-B1` over `123.45`), written
//! normalised as `99B1-123.45`. Facts: shared/reference/vietnam-enforcement.md.

use std::fmt;

/// Series letters in use (no I, J, O, Q, W); R is trailers. Đ is read as D.
const SERIES_LETTERS: &str = "ABCDEFGHKLMNPRSTUVXYZ";

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

fn parse_head(head: &str) -> Result<(String, String), PlateError> {
    let head = alnum(head);
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
        && rest.chars().all(|c| c.is_ascii_digit());
    if !ok {
        return Err(PlateError::Series(series.into()));
    }
    Ok((province.into(), series.into()))
}

fn parse_number(tail: &str) -> Result<String, PlateError> {
    let digits = alnum(tail);
    if !(4..=5).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(PlateError::Number(tail.into()));
    }
    Ok(digits)
}

/// Parse a plate from the lines OCR read, top to bottom.
pub fn parse(lines: &[&str]) -> Result<Plate, PlateError> {
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
    let (province, series) = parse_head(&head)?;
    let number = parse_number(&tail)?;
    Ok(Plate {
        province,
        series,
        number,
        lines: lines.len(),
    })
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
