//! Unit tests of one upstream registry: request URLs are built from validated parts.

use super::*;
use crate::config::Config;
use crate::upstream::Upstreams;

#[test]
fn urls_are_built_from_validated_parts() {
    let mut config = Config::new("/nonexistent".into());
    config.set_upstream(
        "r.example".parse().unwrap(),
        UpstreamUrl::parse("https://r.example:8443").unwrap(),
    );
    let ups = Upstreams::new(&config, Default::default()).unwrap();
    let r = ups.get(&"r.example".parse().unwrap()).unwrap();
    let repo = Repository::parse("org/app").unwrap();
    let digest = Digest::of(b"");
    let url = r.api_url(&repo, &format!("blobs/{digest}")).unwrap();
    assert_eq!(
        url.as_str(),
        format!("https://r.example:8443/v2/org/app/blobs/{digest}")
    );
    assert!(ups.get(&"evil.example".parse().unwrap()).is_none());
    config.set_upstream(
        "ghcr.io".parse().unwrap(),
        UpstreamUrl::parse("http://central:5000/ghcr.io").unwrap(),
    );
    let chained = Upstreams::new(&config, Default::default()).unwrap();
    let g = chained.get(&"ghcr.io".parse().unwrap()).unwrap();
    let url = g.api_url(&g.remote(&repo).unwrap(), "tags/list").unwrap();
    assert_eq!(
        url.as_str(),
        "http://central:5000/v2/ghcr.io/org/app/tags/list"
    );
    assert_eq!(ups.all().count(), 2, "docker.io plus ours");
    let s = r.status();
    assert!(s.available && s.consecutive_failures == 0 && s.ratelimit_remaining.is_none());
    assert!(s.last_failure.is_none() && s.ratelimit_limit.is_none());
}
