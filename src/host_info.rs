//! `--host-info FILE`: what the host says about its own name and addresses, shown in
//! `/_regmirror/status` so that a person who found the box (by its mDNS name, or its
//! address on a router's page) sees how the office should reach it.
//!
//! The SD-card OS writes `/run/regmirror-os/network.json` at boot and when DHCP changes the
//! address (`image/sd/rootfs/etc/net-functions`): `{"hostname", "mdns_name", "mode",
//! "addresses": [{"interface", "address"}]}`. The file is re-read on every status request
//! (a tmpfs file of a few hundred bytes: cheaper than watching it), at most
//! [`MAX_HOST_INFO_BYTES`] of it, and only those fields, as strings, are passed on — the
//! status JSON never echoes arbitrary content of a file.

use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::Path;

/// The most of the file that is read. The OS writes a host name, an mDNS name and a few
/// addresses (a few hundred bytes); a longer file is not one of ours.
pub const MAX_HOST_INFO_BYTES: u64 = 4096;

/// The most addresses passed on: a Pi has an Ethernet and a Wi-Fi interface, each with an
/// IPv4 and a few IPv6 addresses.
pub const MAX_ADDRESSES: usize = 16;

/// The longest string field passed on (a DNS name is at most 253 bytes).
const MAX_FIELD_CHARS: usize = 253;

/// The host's name and addresses from `path`, or `{"error": …}` naming the file and why.
pub fn read(path: &Path) -> Value {
    match read_capped(path).and_then(|text| parse(&text)) {
        Ok(v) => v,
        Err(e) => json!({ "error": format!("--host-info {}: {e}", path.display()) }),
    }
}

fn read_capped(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_HOST_INFO_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_HOST_INFO_BYTES {
        return Err(format!("longer than {MAX_HOST_INFO_BYTES} bytes"));
    }
    Ok(text)
}

/// The known fields of the OS's JSON, as strings; anything else is dropped.
pub fn parse(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not a JSON object")?;
    let mut out = Map::new();
    for key in ["hostname", "mdns_name", "mode"] {
        if let Some(s) = o.get(key).and_then(field) {
            out.insert(key.into(), s);
        }
    }
    let addresses: Vec<Value> = o
        .get("addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let address = a.get("address").and_then(field)?;
            let interface = a.get("interface").and_then(field).unwrap_or(Value::Null);
            Some(json!({ "interface": interface, "address": address }))
        })
        .take(MAX_ADDRESSES)
        .collect();
    out.insert("addresses".into(), Value::Array(addresses));
    Ok(Value::Object(out))
}

/// A string field, cut to [`MAX_FIELD_CHARS`] characters.
fn field(v: &Value) -> Option<Value> {
    let s = v.as_str()?;
    Some(Value::String(s.chars().take(MAX_FIELD_CHARS).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_file_is_passed_on_field_by_field() {
        let v = parse(
            r#"{"hostname":"pi","mdns_name":"pi.local","mode":"static","secret":"x",
               "addresses":[{"interface":"eth0","address":"192.168.1.5/24"},{"bad":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"hostname":"pi","mdns_name":"pi.local","mode":"static",
                   "addresses":[{"interface":"eth0","address":"192.168.1.5/24"}]})
        );
    }

    #[test]
    fn what_is_not_the_os_file_is_an_error_or_cut() {
        assert!(parse("[1]").is_err());
        assert!(parse("{").is_err());
        let long = "a".repeat(1000);
        let v = parse(&format!(r#"{{"hostname":"{long}"}}"#)).unwrap();
        assert_eq!(v["hostname"].as_str().unwrap().len(), MAX_FIELD_CHARS);
        let many: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"address":"10.0.0.{i}"}}"#))
            .collect();
        let v = parse(&format!(r#"{{"addresses":[{}]}}"#, many.join(","))).unwrap();
        assert_eq!(v["addresses"].as_array().unwrap().len(), MAX_ADDRESSES);
    }

    #[test]
    fn a_missing_or_oversized_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read(&dir.path().join("none.json"));
        assert!(missing["error"].as_str().unwrap().contains("none.json"));
        let big = dir.path().join("big.json");
        std::fs::write(&big, " ".repeat(MAX_HOST_INFO_BYTES as usize + 1)).unwrap();
        assert!(read(&big)["error"]
            .as_str()
            .unwrap()
            .contains("longer than"));
    }
}
