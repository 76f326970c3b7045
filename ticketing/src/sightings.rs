//! Sightings: every plate the pipeline reads, violation or not, and the search that
//! forgives OCR's mistakes.
//!
//! A search folds the query and the plates alike ([`fold_plate`]: 0/O/D, 1/I/L, 8/B, 5/S,
//! 2/Z, 6/G are one character each), so `98A-l23.4S` finds `98A-123.45` exactly. Beyond
//! look-alikes, one character read wrong, missing or extra anywhere is forgiven: candidates
//! are fetched by the query's one-edit variants as LIKE patterns answered by a trigram
//! index ([`candidate_patterns`]), then ranked by edit distance.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use vigil_core::look_alike::fold_plate;
use vigil_core::plate::PlateColour;

pub use vigil_core::Sighting;

/// A sighting as API clients see it: where its picture lies on the server stays there; a
/// client is told only whether there is one (`GET /api/sightings/{id}/thumbnail`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Sighting)]
pub struct SightingView {
    /// Derived from the camera, the source and the moment: recording twice adds nothing.
    pub sighting_id: Uuid,
    pub camera_id: String,
    pub plate: String,
    pub confidence: f32,
    pub vehicle_class: String,
    #[schema(value_type = Option<crate::http::schema::PlateColourSchema>)]
    pub plate_colour: Option<PlateColour>,
    pub seen_at: DateTime<Utc>,
    /// The video it was read from (file path, or stream URL without credentials).
    pub source: String,
    pub has_thumbnail: bool,
    /// Where in the source it was read, when the source is a recording.
    pub video_offset_ms: Option<u64>,
}

impl From<&Sighting> for SightingView {
    fn from(s: &Sighting) -> Self {
        Self {
            sighting_id: s.sighting_id,
            camera_id: s.camera_id.clone(),
            plate: s.plate.clone(),
            confidence: s.confidence,
            vehicle_class: s.vehicle_class.clone(),
            plate_colour: s.plate_colour,
            seen_at: s.seen_at,
            source: s.source.clone(),
            has_thumbnail: s.thumbnail.is_some(),
            video_offset_ms: s.video_offset_ms,
        }
    }
}

/// The most a sighting's picture may weigh: a vehicle cut from an analysis frame is tens of
/// kilobytes.
const MAX_PICTURE_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

/// Keep a worker's picture of a sighting (base64 JPEG, as it travels) where this service
/// keeps pictures, named by the sighting (never where a client says); its path.
pub async fn keep_picture(
    data: &vigil_core::DataDir,
    sighting: &Sighting,
    b64: &str,
) -> Result<String, PictureError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| PictureError::Invalid(format!("picture_jpeg_base64: {e}")))?;
    if bytes.len() > MAX_PICTURE_BYTES || !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(PictureError::Invalid(format!(
            "picture_jpeg_base64: not a JPEG of at most {MAX_PICTURE_BYTES} bytes"
        )));
    }
    let dir = data.sightings(&sighting.camera_id);
    let path = dir.join(format!("{}.jpg", sighting.sighting_id));
    write_whole(&dir, &path, &bytes)
        .await
        .map_err(|e| PictureError::Io(format!("{}: {e}", path.display())))?;
    Ok(path.display().to_string())
}

/// Write a file aside and rename it into place: a reader never sees half of it.
async fn write_whole(
    dir: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, path).await
}

fn as_view<S: serde::Serializer>(s: &Sighting, ser: S) -> Result<S::Ok, S::Error> {
    SightingView::from(s).serialize(ser)
}

/// What to search for; every field but `plate` narrows.
#[derive(Debug, Clone, Default)]
pub struct SightingQuery {
    /// Whole or partial plate, as typed.
    pub plate: String,
    pub camera_id: Option<String>,
    pub vehicle_class: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Most results returned (default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Found {
    pub id: i64,
    /// 1.0 for the whole plate (look-alikes aside); less for a part of it, or for a
    /// plate one character away.
    pub score: f32,
    #[serde(serialize_with = "as_view")]
    #[schema(value_type = SightingView)]
    pub sighting: Sighting,
}

/// Fewest folded characters a search needs: fewer would match half the province.
pub const MIN_QUERY: usize = 3;
/// Most folded characters a search may have: a plate has at most nine letters and digits
/// (`99B1-123.45`); a longer query matches nothing, and each character more makes the
/// one-edit search ask the database more.
pub const MAX_QUERY: usize = 12;
/// Most characters a plate query may be typed with (separators and spaces included).
pub const MAX_TYPED: usize = 40;
/// Most characters of a camera id or a vehicle class a filter may name.
pub const MAX_NAME: usize = 64;

/// A typed text shown back in a message: at most 40 characters of it.
pub fn shown(text: &str) -> String {
    if text.chars().count() <= MAX_TYPED {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX_TYPED).collect::<String>())
    }
}

/// The folded key of a typed plate query, or why it cannot be searched: too short to
/// narrow, too long to be a plate.
pub fn query_key(typed: &str) -> Result<String, String> {
    if typed.chars().count() > MAX_TYPED {
        return Err(format!(
            "plate search `{}`: a plate is typed in at most {MAX_TYPED} characters",
            shown(typed)
        ));
    }
    let key = fold_plate(typed);
    let n = key.chars().filter(|c| c.is_alphanumeric()).count();
    if n < MIN_QUERY {
        return Err(format!(
            "plate search `{typed}`: type at least {MIN_QUERY} letters or digits"
        ));
    }
    if n > MAX_QUERY {
        return Err(format!(
            "plate search `{typed}`: a plate has at most {MAX_QUERY} letters and digits"
        ));
    }
    Ok(key)
}

impl SightingQuery {
    /// The query's folded key, after checking every field is a size a search can take.
    pub fn checked_key(&self) -> Result<String, String> {
        for (name, value) in [("camera", &self.camera_id), ("class", &self.vehicle_class)] {
            if let Some(v) = value
                && v.chars().count() > MAX_NAME
            {
                return Err(format!(
                    "{name} `{}`: at most {MAX_NAME} characters",
                    shown(v)
                ));
            }
        }
        query_key(&self.plate)
    }
}
/// Candidates fetched before ranking, newest first.
pub(crate) const CANDIDATES: i64 = 5000;
/// Least score returned.
pub(crate) const MIN_SCORE: f32 = 0.5;
/// A character read wrong is forgiven only in queries this long: in a part of a plate,
/// one edit away matches too much of the province to be useful.
const MIN_FUZZY: usize = 6;

/// How well a folded query matches a folded plate: 1.0 equal; a part of the plate scores
/// by how much of it the query covers; one edit away (in the whole, or in the part)
/// costs a share of the query's length.
pub fn similarity(query: &str, plate: &str) -> f32 {
    let (q, p): (Vec<char>, Vec<char>) = (query.chars().collect(), plate.chars().collect());
    if q.is_empty() || p.is_empty() {
        return 0.0;
    }
    let coverage = |len: usize| (len.min(p.len()) as f32 / p.len() as f32).min(1.0);
    if plate.contains(query) {
        return 0.5 + 0.5 * coverage(q.len());
    }
    let mut best = usize::MAX;
    if q.len() + 1 >= p.len() {
        // A whole plate typed: compared with the whole plate.
        best = strsim::levenshtein(query, plate);
    } else {
        // A part: the closest window of the plate (windows one shorter and longer than
        // the query let a missing or extra character count as one edit).
        for len in q.len().saturating_sub(1).max(1)..=q.len() + 1 {
            for start in 0..=p.len() - len {
                let window: String = p[start..start + len].iter().collect();
                best = best.min(strsim::levenshtein(query, &window));
            }
        }
    }
    if best == usize::MAX || best > 1 || q.len() < MIN_FUZZY {
        return 0.0;
    }
    let penalty = 1.0 - best as f32 / q.len() as f32;
    (0.5 + 0.5 * coverage(q.len())) * penalty * 0.9
}

/// The LIKE patterns that fetch every plate holding the folded query, or (in queries of
/// `MIN_FUZZY` or more characters) the query with one character read wrong, missing or
/// extra: the query itself; with each character a wildcard (`_`); with each character
/// dropped; with a wildcard slipped between each two. Every pattern keeps a run of three
/// or more characters, so the trigram indexes answer it, and each is narrow: folded
/// plates are mostly digits, where half a plate would match thousands.
pub fn candidate_patterns(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().filter(|c| c.is_alphanumeric()).collect();
    let text = |cs: &[char]| -> String { cs.iter().collect() };
    let mut patterns = vec![text(&chars)];
    if chars.len() >= MIN_FUZZY {
        for i in 0..chars.len() {
            let mut wrong = chars.clone();
            wrong[i] = '_';
            patterns.push(text(&wrong));
            let mut missing = chars.clone();
            missing.remove(i);
            patterns.push(text(&missing));
            if i > 0 {
                let mut extra = chars.clone();
                extra.insert(i, '_');
                patterns.push(text(&extra));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    patterns
        .into_iter()
        .map(|p| format!("%{}%", p.trim_matches('_')))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}
