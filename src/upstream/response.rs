//! Reading upstream answers: status → [`UpstreamError`], headers (`Content-Length`,
//! `Content-Range`, `Retry-After`, `Content-Type`), media types.

use crate::error::UpstreamError;
use crate::http::Status;
use crate::media_type::MediaType;
use http_types::Response;

/// Maps a final answer's status: only a 2xx comes back as `Ok`.
pub(crate) fn check_status(res: Response) -> Result<Response, UpstreamError> {
    match status_of(&res).code() {
        200..=299 => Ok(res),
        404 => Err(UpstreamError::NotFound),
        429 => Err(UpstreamError::TooManyRequests {
            retry_after: retry_after(&res),
        }),
        401 => Err(UpstreamError::Unauthorized),
        403 => Err(UpstreamError::Denied),
        _ => Err(UpstreamError::Status(status_of(&res))),
    }
}

/// A response's status as our type (http-types only builds responses with valid codes).
pub(crate) fn status_of(res: &Response) -> Status {
    Status::new(u16::from(res.status())).unwrap_or(Status::BAD_GATEWAY)
}

pub(crate) fn protocol(why: &str) -> UpstreamError {
    UpstreamError::Protocol(why.to_owned())
}

/// The last value of a header.
pub(crate) fn header<'a>(res: &'a Response, name: &str) -> Option<&'a str> {
    res.header(name).map(|v| v.last().as_str())
}

pub(crate) fn content_length(res: &Response) -> Option<u64> {
    header(res, "content-length").and_then(|v| v.trim().parse().ok())
}

/// `Retry-After` in seconds (an HTTP-date is not worth a date parser: `None`).
pub(crate) fn retry_after(res: &Response) -> Option<u64> {
    header(res, "retry-after").and_then(|v| v.trim().parse().ok())
}

/// The `mediaType` field of a manifest body, for upstreams that send a generic
/// `Content-Type` (`application/json`).
pub(crate) fn body_media_type(body: &[u8]) -> Option<MediaType> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    MediaType::parse(json.get("mediaType")?.as_str()?).filter(MediaType::is_manifest)
}

/// `bytes <start>-<end>/<total|*>` → (start, total).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (start <= end && total.is_none_or(|t| end < t)).then_some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        for bad in [
            "bytes 9-5/10",
            "bytes 0-10/10",
            "items 0-1/2",
            "bytes */10",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn media_types_from_bodies() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(body_media_type(body), Some(MediaType::DOCKER_MANIFEST));
        assert_eq!(body_media_type(br#"{"mediaType":"text/html"}"#), None);
    }
}
