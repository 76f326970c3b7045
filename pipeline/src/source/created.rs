//! When a recording began, from its container: an MP4 or QuickTime file's movie header
//! (`moov/mvhd`) holds its creation time. A file's modification time is not it: a copy
//! has another. Boxes are walked by their sizes without trusting them (a box that runs
//! past its parent or the file ends the walk), so a damaged file gives no time, never a
//! wrong one or a hang.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Datelike, Utc};

/// Seconds from 1904-01-01 (QuickTime's epoch) to 1970-01-01.
const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;
/// The most boxes looked at on one level: real files have a handful.
const MAX_BOXES: usize = 4_096;

/// A box: its type, where its content starts and ends.
struct BoxHeader {
    kind: [u8; 4],
    content: u64,
    end: u64,
}

fn read_header(f: &mut File, at: u64, limit: u64) -> std::io::Result<Option<BoxHeader>> {
    if at + 8 > limit {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(at))?;
    let mut head = [0u8; 8];
    f.read_exact(&mut head)?;
    let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
    let kind = [head[4], head[5], head[6], head[7]];
    let (size, header) = match size {
        // To the end of the enclosing box.
        0 => (limit - at, 8),
        1 => {
            let mut large = [0u8; 8];
            f.read_exact(&mut large)?;
            (u64::from_be_bytes(large), 16)
        }
        n => (n, 8),
    };
    if size < header || at.checked_add(size).is_none_or(|end| end > limit) {
        return Ok(None);
    }
    Ok(Some(BoxHeader {
        kind,
        content: at + header,
        end: at + size,
    }))
}

/// The first box of `kind` between `from` and `to`.
fn find(f: &mut File, kind: &[u8; 4], from: u64, to: u64) -> std::io::Result<Option<BoxHeader>> {
    let mut at = from;
    for _ in 0..MAX_BOXES {
        let Some(b) = read_header(f, at, to)? else {
            return Ok(None);
        };
        if &b.kind == kind {
            return Ok(Some(b));
        }
        at = b.end;
    }
    Ok(None)
}

/// The creation time an MP4/QuickTime file's movie header gives, if it has one that is a
/// real time (encoders that know none write 0, which is 1904).
pub fn creation_time(path: &Path) -> std::io::Result<Option<DateTime<Utc>>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let Some(moov) = find(&mut f, b"moov", 0, len)? else {
        return Ok(None);
    };
    let Some(mvhd) = find(&mut f, b"mvhd", moov.content, moov.end)? else {
        return Ok(None);
    };
    f.seek(SeekFrom::Start(mvhd.content))?;
    let mut version = [0u8; 4];
    f.read_exact(&mut version)?;
    let seconds = match version[0] {
        0 => {
            let mut t = [0u8; 4];
            f.read_exact(&mut t)?;
            u32::from_be_bytes(t) as i64
        }
        1 => {
            let mut t = [0u8; 8];
            f.read_exact(&mut t)?;
            i64::try_from(u64::from_be_bytes(t)).unwrap_or(0)
        }
        _ => return Ok(None),
    };
    if seconds == 0 {
        return Ok(None);
    }
    let time = seconds
        .checked_sub(QUICKTIME_EPOCH_OFFSET)
        .and_then(|unix| DateTime::from_timestamp(unix, 0));
    Ok(time.filter(|t| vigil_core::event::YEARS.contains(&t.year())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mvhd(version: u8, seconds: u64) -> Vec<u8> {
        let mut content = vec![version, 0, 0, 0];
        if version == 0 {
            content.extend((seconds as u32).to_be_bytes());
        } else {
            content.extend(seconds.to_be_bytes());
        }
        content.extend([0u8; 16]);
        boxed(b"mvhd", &content)
    }

    fn boxed(kind: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let mut b = ((content.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(content);
        b
    }

    fn file(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mp4");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn the_movie_headers_time_is_read_wherever_moov_is() {
        // 2025-03-02T00:00:00Z, in QuickTime seconds.
        let t = 1_740_873_600 + QUICKTIME_EPOCH_OFFSET as u64;
        let expected: DateTime<Utc> = "2025-03-02T00:00:00Z".parse().unwrap();
        let moov = boxed(b"moov", &[boxed(b"trak", &[0; 12]), mvhd(0, t)].concat());
        // moov after the media, as most cameras write it, and a 64-bit header version.
        let tail = [boxed(b"ftyp", b"isom"), boxed(b"mdat", &[7; 100]), moov].concat();
        let (_d, path) = file(&tail);
        assert_eq!(creation_time(&path).unwrap(), Some(expected));
        let v1 = [boxed(b"ftyp", b"isom"), boxed(b"moov", &mvhd(1, t))].concat();
        let (_d, path) = file(&v1);
        assert_eq!(creation_time(&path).unwrap(), Some(expected));
    }

    #[test]
    fn no_time_damaged_boxes_and_absurd_times_give_none() {
        for bytes in [
            // 0: the encoder knew no time (1904).
            boxed(b"moov", &mvhd(0, 0)),
            // 9999: no camera's time.
            boxed(
                b"moov",
                &mvhd(1, 253_402_300_799 + QUICKTIME_EPOCH_OFFSET as u64),
            ),
            // A box claiming to be larger than the file; one of size 3; no moov at all.
            [&u32::MAX.to_be_bytes()[..], b"moov", &mvhd(0, 5)].concat(),
            [&3u32.to_be_bytes()[..], b"moov"].concat(),
            boxed(b"mdat", &[0; 64]),
            b"\x89PNG\r\n\x1a\n not a video".to_vec(),
            Vec::new(),
        ] {
            let (_d, path) = file(&bytes);
            assert_eq!(creation_time(&path).unwrap(), None, "{bytes:?}");
        }
    }
}
