//! Reading upstream answers: status → [`UpstreamError`], headers (`Content-Length`,
//! `Content-Range`, `Retry-After`, `Content-Type`), media types.

use super::head::parse_decimal;
use super::wire::{host_of, Response};
use crate::error::UpstreamError;
use crate::media_type::MediaType;

/// Maps a final answer's status: only a 2xx comes back as `Ok`. The errors name the host
/// that answered.
pub(crate) fn check_status(res: Response) -> Result<Response, UpstreamError> {
    let host = || host_of(&res.url);
    match res.status.code() {
        200..=299 => Ok(res),
        404 => Err(UpstreamError::NotFound),
        429 => Err(UpstreamError::TooManyRequests {
            retry_after: retry_after(&res),
            host: host(),
        }),
        401 => Err(UpstreamError::Unauthorized(format!(
            "{} answered 401 after the token flow (credentials missing or refused)",
            host()
        ))),
        403 => Err(UpstreamError::Denied(format!("{} answered 403", host()))),
        _ => Err(UpstreamError::Status(res.status, host())),
    }
}

/// A protocol error about the answer `res`, naming its host.
pub(crate) fn protocol(res: &Response, why: &str) -> UpstreamError {
    UpstreamError::Protocol(format!("{}: {why}", host_of(&res.url)))
}

/// The last value of a header.
pub(crate) fn header<'a>(res: &'a Response, name: &str) -> Option<&'a str> {
    res.header(name)
}

/// `Content-Length` as a number (the body's framing was checked when the head was read).
pub(crate) fn content_length(res: &Response) -> Option<u64> {
    header(res, "content-length").and_then(|v| parse_decimal(v.split(',').next()?.trim()))
}

/// `Retry-After` in seconds (an HTTP-date is not worth a date parser: `None`).
pub(crate) fn retry_after(res: &Response) -> Option<u64> {
    header(res, "retry-after").and_then(|v| parse_decimal(v.trim()))
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
    let (start, end) = (parse_decimal(start.trim())?, parse_decimal(end.trim())?);
    let total = match total.trim() {
        "*" => None,
        t => Some(parse_decimal(t)?),
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
            "bytes +1-2/3",
            "bytes 0-99999999999999999999/*",
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
