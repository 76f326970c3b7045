//! Camera URLs split into what may be shown and what may not: credentials go to rtspsrc's
//! properties, never into a URL that is logged, shown or written into evidence.

use crate::source::SourceError;

#[derive(Debug, Clone, PartialEq)]
pub struct CameraUrl {
    /// Without credentials: safe for logs, states and evidence.
    pub shown: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub fn parse_camera_url(url: &str) -> Result<CameraUrl, SourceError> {
    let bad = |message: String| SourceError::CameraUrl {
        url: redact(url),
        message,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "rtsp" | "rtsps") {
        return Err(bad("the scheme must be rtsp or rtsps".into()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".into()));
    }
    let username = (!parsed.username().is_empty()).then(|| percent_decode(parsed.username()));
    let password = parsed.password().map(percent_decode);
    let mut shown = parsed.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    Ok(CameraUrl {
        shown: shown.to_string(),
        username,
        password,
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL with any credentials replaced, for messages about a URL that did not parse.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_bad_urls_are_named_without_them() {
        let u = parse_camera_url("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/101").unwrap();
        assert_eq!(u.shown, "rtsp://10.0.0.5:554/Streaming/101");
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        let err = parse_camera_url("http://admin:secret@cam/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rtsp or rtsps") && !err.contains("secret"),
            "{err}"
        );
        let err = parse_camera_url("not a url").unwrap_err().to_string();
        assert!(err.contains("camera URL `not a url`"), "{err}");
    }
}
