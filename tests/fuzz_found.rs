//! Regression tests for what the fuzz targets (`fuzz/`) found: each input a target
//! reported, reduced to the property it broke, checked through the public API.

use regmirror::access::cidr::Cidr;
use regmirror::config::UpstreamUrl;
use regmirror::http::Request;
use regmirror::image_ref::ImageRef;
use regmirror::keep;
use regmirror::reference::{Repository, MAX_REPOSITORY_LEN};
use regmirror::routes;

/// fuzz target `reference`/`keep`: Docker Hub's `library/` prefix made a 250-character
/// name 258 characters long — a `Repository` past its own limit, which a keep list then
/// printed as a line that no longer parses.
#[test]
fn the_library_prefix_never_makes_a_name_longer_than_the_limit() {
    let long = "a".repeat(MAX_REPOSITORY_LEN - 5);
    assert!(Repository::parse(&long).is_ok());
    assert!(
        ImageRef::parse(&long).is_err(),
        "{long:?} becomes library/{long}, over {MAX_REPOSITORY_LEN}"
    );
    assert!(keep::parse(&format!("{long}\n")).is_err());
    let req = Request::get(&format!("/v2/{long}/manifests/latest"));
    assert!(routes::parse(&req).is_err(), "a route to library/{long}");
    // At the limit exactly it is still a name.
    let fits = "a".repeat(MAX_REPOSITORY_LEN - "library/".len());
    let r = ImageRef::parse(&fits).unwrap();
    assert_eq!(r.repo.as_str().len(), MAX_REPOSITORY_LEN);
    assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r);
}

/// fuzz target `cidr`: `--allow ::ffff:10.0.0.1` parsed, but matched nothing — peers'
/// IPv4-mapped addresses are compared as IPv4, the range stayed IPv6. Such a range is the
/// IPv4 range it maps.
#[test]
fn an_ipv4_mapped_range_admits_the_ipv4_addresses_it_maps() {
    let one = Cidr::parse("::ffff:10.0.0.1").unwrap();
    assert!(one.contains("10.0.0.1".parse().unwrap()));
    assert!(one.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(!one.contains("10.0.0.2".parse().unwrap()));
    assert_eq!(one, Cidr::parse("10.0.0.1/32").unwrap());
    let net = Cidr::parse("::ffff:192.168.0.0/112").unwrap();
    assert!(net.contains("192.168.7.9".parse().unwrap()));
    assert_eq!(net.to_string(), "192.168.0.0/16");
    // Shorter than the mapped prefix: not an IPv4 range, and not one we can read.
    assert!(Cidr::parse("::ffff:0.0.0.0/95").is_err());
}

/// fuzz target `sizes`: `http://+[::1]:80` was an upstream URL with host `+[::1]`, which
/// prints as `http://[+[::1]]:80` and cannot be connected to. A host is a DNS name, an
/// IPv4 address, or an IPv6 address in brackets.
#[test]
fn an_upstream_host_is_a_name_or_an_address() {
    for bad in [
        "http://+[::1]:80",
        "http://a b",
        "http://[nonsense]:80",
        "http://[::1]x:80",
        "http://-a.example",
        "http://::1:80",
        "http://a..b",
    ] {
        assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
    }
    for good in [
        "http://127.0.0.1:5000",
        "http://[::1]:80",
        "https://registry-1.docker.io",
        "http://localhost",
        "http://Central:5000",
    ] {
        let u = UpstreamUrl::parse(good).unwrap();
        assert_eq!(UpstreamUrl::parse(&u.to_string()).unwrap(), u, "{good}");
    }
}
