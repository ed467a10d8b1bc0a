//! Routing: which upstream and repository a path names, and what is refused.

use super::*;

fn route(path: &str) -> Result<Route, Error> {
    parse(&Request::get(path))
}

fn name(up: &str, repo: &str) -> Name {
    Name {
        upstream: up.parse().unwrap(),
        repo: Repository::parse(repo).unwrap(),
    }
}

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn docker_hub_names_get_library() {
    let Ok(Route::Manifest(n, Reference::Tag(t))) = route("/v2/alpine/manifests/latest") else {
        panic!()
    };
    assert_eq!(
        (n, t.as_str()),
        (name("docker.io", "library/alpine"), "latest")
    );
    let Ok(Route::Blob(n, _)) = route(&format!("/v2/myorg/team/app/blobs/{D}")) else {
        panic!()
    };
    assert_eq!(n, name("docker.io", "myorg/team/app"));
}

#[test]
fn ns_query_and_path_prefix_choose_the_upstream() {
    let Ok(Route::Manifest(n, _)) = route("/v2/owner/app/manifests/1?ns=ghcr.io") else {
        panic!()
    };
    assert_eq!(n, name("ghcr.io", "owner/app"));
    let Ok(Route::TagsList(n)) = route("/v2/ghcr.io/owner/app/tags/list") else {
        panic!()
    };
    assert_eq!(n, name("ghcr.io", "owner/app"));
    let Ok(Route::Manifest(n, _)) = route("/v2/library/alpine/manifests/1?ns=docker.io") else {
        panic!()
    };
    assert_eq!(n, name("docker.io", "library/alpine"));
}

#[test]
fn bad_input_is_refused_with_the_right_error() {
    assert!(matches!(
        route("/v2/../etc/manifests/x"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        route("/v2/a/manifests/..%2f"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        route("/v2/a/blobs/sha256:abc"),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        route("/v2/a/manifests/x?ns=../../x"),
        Err(Error::UnknownUpstream(_))
    ));
    assert!(matches!(route("/v2/a/blobs/uploads/"), Ok(Route::Write)));
    assert!(matches!(route("/etc/passwd"), Err(Error::NotFound)));
    assert!(matches!(route("/v2/a/b"), Err(Error::NotFound)));
    assert!(matches!(
        route("/v2/Alpine/manifests/x"),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn referrers_route_with_its_filter() {
    let Ok(Route::Referrers(n, d, None)) = route(&format!("/v2/alpine/referrers/{D}")) else {
        panic!()
    };
    assert_eq!(
        (n, d.to_string()),
        (name("docker.io", "library/alpine"), D.into())
    );
    let path = format!("/v2/ghcr.io/o/a/referrers/{D}?artifactType=application%2Fspdx%2Bjson");
    let Ok(Route::Referrers(n, _, Some(t))) = route(&path) else {
        panic!()
    };
    assert_eq!(
        (n, t.as_str()),
        (name("ghcr.io", "o/a"), "application/spdx+json")
    );
    assert!(route(&format!("/v2/a/referrers/{D}?artifactType=%zz")).is_err());
    assert!(route("/v2/a/referrers/latest").is_err());
}

#[test]
fn fixed_routes() {
    assert_eq!(route("/v2/").unwrap(), Route::Base);
    assert_eq!(route("/v2").unwrap(), Route::Base);
    assert_eq!(route("/v2/_catalog").unwrap(), Route::Catalog);
    assert_eq!(route("/_regmirror/status").unwrap(), Route::Status);
    use crate::page::Route as Page;
    assert_eq!(route("/").unwrap(), Route::Page(Page::Home));
    assert_eq!(route("/_regmirror/").unwrap(), Route::Page(Page::Home));
    assert_eq!(route("/?sort=size").unwrap(), Route::Page(Page::Home));
    assert_eq!(
        route("/_regmirror/image?image=alpine:3").unwrap(),
        Route::Page(Page::Image)
    );
}
