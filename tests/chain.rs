//! Chained mirrors (issue 9): an edge regmirror whose upstreams are a central regmirror —
//! Docker Hub names as they are, another registry through the central one's path prefix
//! (`--upstream ghcr.io=http://central/ghcr.io`). Digests are checked at every level, and
//! each level keeps what it served.

mod support;

use support::mirror::{pull, Mirror};
use support::{FakeUpstream, TestImage};

#[test]
fn an_edge_mirror_reaches_hub_and_non_hub_images_through_a_central_one() {
    let hub = FakeUpstream::start();
    let ghcr = FakeUpstream::start();
    let hub_img = TestImage::new(11, &[4000, 500]);
    let ghcr_img = TestImage::new(12, &[3000]);
    hub.push_image("library/alpine", "latest", &hub_img);
    ghcr.push_image("owner/app", "1.0", &ghcr_img);
    let central = Mirror::start_with(&hub, |c| {
        c.set_upstream(
            "ghcr.io".parse().unwrap(),
            regmirror::config::UpstreamUrl::parse(&ghcr.url()).unwrap(),
        )
    });
    let central_url = format!("http://{}", central.addr);
    let edge = Mirror::start_with(&hub, |c| {
        let url = |s: &str| regmirror::config::UpstreamUrl::parse(s).unwrap();
        c.set_upstream("docker.io".parse().unwrap(), url(&central_url));
        c.set_upstream(
            "ghcr.io".parse().unwrap(),
            url(&format!("{central_url}/ghcr.io")),
        );
    });

    pull(edge.addr, "alpine", "latest", &hub_img);
    pull(edge.addr, "ghcr.io/owner/app", "1.0", &ghcr_img);
    assert!(
        ghcr.requests()
            .iter()
            .all(|r| r.target.starts_with("/v2/owner/app/")),
        "the central mirror asked ghcr for its own names: {:?}",
        ghcr.requests()
            .iter()
            .map(|r| &r.target)
            .collect::<Vec<_>>()
    );
    for (img, up) in [(&hub_img, &hub), (&ghcr_img, &ghcr)] {
        let layer = img.layer_digest(0);
        assert_eq!(up.count("GET", &layer), 1, "one upstream GET for {layer}");
        assert!(central.blob_file(&layer).is_file(), "central keeps {layer}");
        assert!(edge.blob_file(&layer).is_file(), "edge keeps {layer}");
    }
    // Warm at the edge: the chain is not asked for blobs again.
    hub.clear_log();
    ghcr.clear_log();
    pull(edge.addr, "ghcr.io/owner/app", "1.0", &ghcr_img);
    assert_eq!(ghcr.count("GET", "/blobs/"), 0);
}
