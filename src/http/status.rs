//! [`Status`]: an HTTP status code as a type — the ones we send by name, any valid one an
//! upstream sends by value.

use std::fmt;

/// An HTTP status code, `100..=599` (RFC 9110 §15).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(u16);

impl Status {
    /// 200
    pub const OK: Status = Status(200);
    /// 202: an admin action was queued.
    pub const ACCEPTED: Status = Status(202);
    /// 206
    pub const PARTIAL_CONTENT: Status = Status(206);
    /// 400
    pub const BAD_REQUEST: Status = Status(400);
    /// 401
    pub const UNAUTHORIZED: Status = Status(401);
    /// 403
    pub const FORBIDDEN: Status = Status(403);
    /// 404
    pub const NOT_FOUND: Status = Status(404);
    /// 405
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    /// 408
    pub const REQUEST_TIMEOUT: Status = Status(408);
    /// 409: an admin action conflicts with the mirror's state (evicting a pinned image).
    pub const CONFLICT: Status = Status(409);
    /// 416
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);
    /// 429
    pub const TOO_MANY_REQUESTS: Status = Status(429);
    /// 431
    pub const HEADERS_TOO_LARGE: Status = Status(431);
    /// 500
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    /// 501
    pub const NOT_IMPLEMENTED: Status = Status(501);
    /// 502
    pub const BAD_GATEWAY: Status = Status(502);
    /// 503
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    /// 505
    pub const VERSION_NOT_SUPPORTED: Status = Status(505);

    /// A status from outside (an upstream's status line); `None` outside `100..=599`.
    pub fn new(code: u16) -> Option<Status> {
        (100..=599).contains(&code).then_some(Status(code))
    }

    /// The number.
    pub fn code(self) -> u16 {
        self.0
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 1xx: an interim answer, to be followed by the final one.
    pub fn is_informational(self) -> bool {
        self.0 < 200
    }

    /// A redirect that carries a `Location` to follow (301, 302, 303, 307, 308).
    pub fn is_redirect(self) -> bool {
        matches!(self.0, 301 | 302 | 303 | 307 | 308)
    }

    /// 4xx.
    pub fn is_client_error(self) -> bool {
        (400..500).contains(&self.0)
    }

    /// 5xx.
    pub fn is_server_error(self) -> bool {
        self.0 >= 500
    }

    /// The standard reason phrase (RFC 9110), or `"Status"` for codes we never send.
    pub fn reason(self) -> &'static str {
        match self.0 {
            200 => "OK",
            202 => "Accepted",
            206 => "Partial Content",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            416 => "Range Not Satisfiable",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "Status",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_codes_and_classes() {
        assert_eq!(Status::new(99), None);
        assert_eq!(Status::new(600), None);
        assert_eq!(Status::new(404), Some(Status::NOT_FOUND));
        assert!(Status::new(100).unwrap().is_informational());
        assert!(Status::OK.is_success() && !Status::OK.is_redirect());
        assert!(Status::new(307).unwrap().is_redirect());
        assert!(!Status::new(304).unwrap().is_redirect());
        assert!(Status::TOO_MANY_REQUESTS.is_client_error());
        assert!(Status::BAD_GATEWAY.is_server_error());
        assert_eq!(Status::HEADERS_TOO_LARGE.to_string(), "431");
    }
}
