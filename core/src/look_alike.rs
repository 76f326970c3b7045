//! OCR's look-alikes, folded: the key every forgiving plate match compares.
//!
//! A plate reduced to what OCR cannot confuse: separators dropped, upper case, and each
//! group of look-alikes (0/O/D, 1/I/L, 8/B, 5/S, 2/Z, 6/G) made one character. The Rust
//! fold and the SQL fold (used by a migration to key the plates already stored) are made
//! from the same two tables, and the case store's tests run the SQL on both databases
//! against [`fold_plate`].

/// Characters a plate is written with that say nothing: dropped.
pub const SEPARATORS: [char; 3] = ['-', '.', ' '];

/// (what OCR may read, the character it stands for), applied after upper-casing.
pub const LOOK_ALIKES: [(char, char); 8] = [
    ('O', '0'),
    ('D', '0'),
    ('I', '1'),
    ('L', '1'),
    ('B', '8'),
    ('S', '5'),
    ('Z', '2'),
    ('G', '6'),
];

/// The folded key of a plate as typed or as read: `98A-l23.4S` → `98A12345`.
pub fn fold_plate(plate: &str) -> String {
    plate
        .chars()
        .filter(|c| !SEPARATORS.contains(c))
        .map(|c| {
            let c = c.to_ascii_uppercase();
            LOOK_ALIKES
                .iter()
                .find(|(from, _)| *from == c)
                .map_or(c, |(_, to)| *to)
        })
        .collect()
}

/// The same fold as an SQL expression over `column`, for SQLite and PostgreSQL alike
/// (`UPPER` and `REPLACE` only).
pub fn fold_plate_sql(column: &str) -> String {
    let mut expr = format!("UPPER({column})");
    for s in SEPARATORS {
        expr = format!("REPLACE({expr}, '{s}', '')");
    }
    for (from, to) in LOOK_ALIKES {
        expr = format!("REPLACE({expr}, '{from}', '{to}')");
    }
    expr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_fold_what_ocr_confuses() {
        assert_eq!(fold_plate("98A-l23.4S"), fold_plate("98A-123.45"));
        assert_eq!(fold_plate("98A-123.45"), "98A12345");
        assert_eq!(fold_plate("51g-0o2.zb"), "51600228");
        assert_eq!(fold_plate("29-B1 002.33"), fold_plate("29-81 OO2.33"));
        assert_ne!(fold_plate("98A-123.45"), fold_plate("98A-123.46"));
    }

    #[test]
    fn the_sql_fold_applies_every_pair_once() {
        let sql = fold_plate_sql("plate");
        assert!(sql.ends_with("'G', '6')"), "{sql}");
        assert_eq!(
            sql.matches("REPLACE(").count(),
            SEPARATORS.len() + LOOK_ALIKES.len()
        );
        assert!(sql.contains("UPPER(plate)"));
    }
}
