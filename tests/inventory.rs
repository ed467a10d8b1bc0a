//! What the mirror says it holds (`/_regmirror/images`), in-process against the fake
//! upstream: derived from the disk, the same after a restart, with pull counters that
//! survive it.

mod support;

use std::time::Duration;
use support::client::{get, request};
use support::mirror::{pull, spawn_in, wait_until, Mirror};
use support::{FakeUpstream, TestImage};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Pushes `children` as the platforms of an index under `repo:tag`; returns its bytes.
fn push_index(
    fake: &FakeUpstream,
    repo: &str,
    tag: &str,
    children: &[(&TestImage, &str)],
) -> Vec<u8> {
    let mut entries = Vec::new();
    for (i, (img, platform)) in children.iter().enumerate() {
        fake.push_image(repo, &format!("child{i}"), img);
        let (os, arch) = platform.split_once('/').unwrap();
        entries.push(format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"os":"{os}","architecture":"{arch}"}}}}"#,
            support::DOCKER_MANIFEST_V2,
            img.manifest_digest(),
            img.manifest.len()
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes();
    fake.add_manifest(repo, tag, &index, OCI_INDEX);
    index
}

fn image_size(img: &TestImage) -> u64 {
    (img.manifest.len() + img.config.len() + img.layers.iter().map(Vec::len).sum::<usize>()) as u64
}

fn images(addr: std::net::SocketAddr) -> Vec<serde_json::Value> {
    let r = get(addr, "/_regmirror/images");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["images"].as_array().unwrap().clone()
}

#[test]
fn the_inventory_lists_each_pulled_image_with_platforms_size_and_pulls() {
    let fake = FakeUpstream::start();
    let single = TestImage::new(1, &[3000, 5000]);
    fake.push_image("library/alpine", "3", &single);
    let (amd, arm) = (TestImage::new(2, &[2000]), TestImage::new(3, &[4000]));
    let index = push_index(
        &fake,
        "library/multi",
        "1",
        &[(&amd, "linux/amd64"), (&arm, "linux/arm64")],
    );
    let m = Mirror::start(&fake);
    pull(m.addr, "library/alpine", "3", &single);
    pull(m.addr, "library/alpine", "3", &single);
    // An amd64 client: the index by tag, then its platform's manifest by digest.
    let r = get(m.addr, "/v2/library/multi/manifests/1");
    assert_eq!(r.body, index);
    pull(m.addr, "library/multi", &amd.manifest_digest(), &amd);

    let all = images(m.addr);
    assert_eq!(all.len(), 2, "{all:?}");
    let a = &all[0];
    assert_eq!(a["image"], "docker.io/library/alpine:3");
    assert_eq!(a["digest"], single.manifest_digest());
    assert_eq!(a["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(a["size_bytes"], image_size(&single));
    assert_eq!(a["complete"], true);
    assert_eq!(a["pulls"], 2);
    assert!(a["last_pulled_unix"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(a["pinned"], false);
    let b = &all[1];
    assert_eq!(b["image"], "docker.io/library/multi:1");
    assert_eq!(b["media_type"], OCI_INDEX);
    assert_eq!(b["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(
        b["index_platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(b["size_bytes"], index.len() as u64 + image_size(&amd));
    assert_eq!(b["complete"], true);
    assert_eq!(b["pulls"], 1, "the by-digest request is the same pull");

    // One image by reference, in any spelling.
    let one = get(m.addr, "/_regmirror/images?image=multi%3A1").json();
    assert_eq!(one["digest"], b["digest"]);
    let none = get(m.addr, "/_regmirror/images?image=nothing:here");
    assert_eq!(none.status, 404);
    let bad = get(m.addr, "/_regmirror/images?image=..%2Fx");
    assert_eq!(bad.status, 400);
}

#[test]
fn an_image_with_a_layer_missing_is_not_complete() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(4, &[1000, 2000]);
    fake.push_image("library/half", "1", &img);
    let m = Mirror::start(&fake);
    assert_eq!(get(m.addr, "/v2/library/half/manifests/1").status, 200);
    let config = get(
        m.addr,
        &format!("/v2/library/half/blobs/{}", img.config_digest()),
    );
    assert_eq!(config.status, 200);
    let layer = get(
        m.addr,
        &format!("/v2/library/half/blobs/{}", img.layer_digest(0)),
    );
    assert_eq!(layer.status, 200);
    let i = &images(m.addr)[0];
    assert_eq!(i["complete"], false);
    assert_eq!(
        i["size_bytes"],
        (img.manifest.len() + img.config.len() + img.layers[0].len()) as u64
    );
    // HEAD of the missing layer does not download it (still incomplete).
    let head = request(
        m.addr,
        "HEAD",
        &format!("/v2/library/half/blobs/{}", img.layer_digest(1)),
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(images(m.addr)[0]["complete"], false);
}

#[test]
fn the_inventory_and_its_counters_survive_a_restart_without_the_upstream() {
    let fake = FakeUpstream::start();
    let img = TestImage::new(5, &[1500]);
    fake.push_image("library/kept", "v1", &img);
    let m = Mirror::start_with(&fake, |c| {
        c.state_save_interval = Duration::from_millis(100)
    });
    for _ in 0..3 {
        pull(m.addr, "library/kept", "v1", &img);
    }
    let before = images(m.addr);
    let counters = m.dir.path().join("state/pulls");
    wait_until("the counters are saved", || {
        std::fs::read_to_string(&counters).is_ok_and(|t| t.contains(" 3 "))
    });
    // A second mirror on the same directory stands for the restart; the upstream is gone.
    let down = FakeUpstream::start();
    down.fail_with(503, None);
    let again = spawn_in(&down, m.dir.path(), |_| {}).unwrap();
    let after = images(again);
    assert_eq!(after, before, "derived from the disk alone");
    assert_eq!(after[0]["pulls"], 3);
}
