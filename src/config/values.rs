//! The values people write for sizes, durations and listen addresses: [`parse_size`],
//! [`parse_duration`] and [`parse_listen`] read them (checked arithmetic, errors that show
//! the fix), [`human_size`] and [`human_duration`] print them back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Every size unit [`parse_size`] accepts, as its messages list them.
pub const SIZE_UNITS: &str = "B, kB, MB, GB, TB (powers of 1000), KiB, MiB, GiB, TiB or K, M, G, T (powers of 1024); case does not matter";

/// Digits after the decimal point a size may have (`1.5G`, `0.25TB`): more precision than
/// any budget needs, and few enough that the fraction's arithmetic stays in `u64`.
pub const MAX_SIZE_FRACTION_DIGITS: usize = 6;

/// Parses `500MB`, `20GiB`, `1.5G`, `1048576`. SI units (`kB`, `MB`, `GB`, `TB`) are powers
/// of 1000; IEC units (`KiB`…) and bare `K`/`M`/`G`/`T` are powers of 1024. Integer
/// arithmetic, checked: a value that does not fit in 64 bits is an error, never rounded.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let not_a_size =
        || format!("{s:?}: expected a size such as 500MB or 20GiB (units: {SIZE_UNITS})");
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(not_a_size());
    }
    if frac.len() > MAX_SIZE_FRACTION_DIGITS {
        return Err(format!(
            "{s:?}: at most {MAX_SIZE_FRACTION_DIGITS} digits after the decimal point"
        ));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000_u64.pow(2),
        "gb" => 1000_u64.pow(3),
        "tb" => 1000_u64.pow(4),
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown size unit; use {SIZE_UNITS}")),
    };
    let too_big = || format!("{s:?}: size out of range");
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_big())?
    };
    // frac digits as a fraction of 10^len: (frac * mult) / 10^len, exact for whole bytes.
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        let digits: u64 = frac.parse().map_err(|_| not_a_size())?;
        let scale = 10_u64.pow(frac.len() as u32);
        let part = u128::from(digits) * u128::from(mult) / u128::from(scale);
        u64::try_from(part).map_err(|_| too_big())?
    };
    whole
        .checked_mul(mult)
        .and_then(|w| w.checked_add(frac_value))
        .ok_or_else(too_big)
}

/// A duration for people, in the largest whole unit: `5m`, `1h`, `90s`, `250ms` (what
/// [`parse_duration`] reads).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A byte count for people: `0 B`, `512 B`, `1.5 KiB`, `23.3 GiB` (powers of 1024, one
/// decimal). [`parse_size`] reads the result back to within the rounding.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// Parses a `--listen` address: `0.0.0.0:5000`, `:5000` (every IPv4 interface, like the
/// default), `localhost:5000` (127.0.0.1), `[::]:5000` (every interface, IPv6 and — unless
/// the system says otherwise — IPv4), `[::1]:5000`, `192.168.1.10:5000`. Other host names
/// are refused rather than looked up: a name can resolve to another machine's address.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let fix = "expected ADDRESS:PORT such as 0.0.0.0:5000, :5000 (every interface), localhost:5000 or [::]:5000";
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(if t.parse::<u16>().is_ok() {
            format!("{s:?}: a port alone is not an address; write :{t} for every interface")
        } else {
            format!("{s:?}: {fix}")
        });
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: the port must be a number from 0 to 65535; {fix}"))?;
    let ip: IpAddr = match host {
        "" | "*" => Ipv4Addr::UNSPECIFIED.into(),
        h if h.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST.into(),
        h if h.contains(':') && !h.starts_with('[') => {
            return Err(format!(
                "{s:?}: write an IPv6 address in brackets, e.g. [::]:{port}"
            ))
        }
        _ => {
            return Err(format!(
                "{s:?}: {fix} (host names other than localhost are not looked up)"
            ))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses `0s`, `90s`, `5m`, `1h`, `1d`, `1h30m`. A unit is required: `300` is ambiguous.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?}: expected a duration such as 0s, 90s, 5m, 1h or 1h30m");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => {
                total = total.checked_add(n / 1000).ok_or_else(err)?;
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(secs)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}
