//! Driving one upstream [`Registry`] directly against the [`FakeUpstream`], for the
//! upstream client's integration tests: config with a short timeout, a block_on runner,
//! identifier shorthands.

use super::{FakeUpstream, TestImage};
use futures_lite::AsyncReadExt;
use regmirror::config::{Config, Credentials, UpstreamUrl};
use regmirror::reference::{Digest, Reference, Repository, UpstreamName};
use regmirror::upstream::{BlobStream, Registry, Upstreams};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

pub const NAME: &str = "fake.local";

/// [`NAME`] as the type the mirror takes.
pub fn name() -> UpstreamName {
    NAME.parse().unwrap()
}

/// Short, so that timeout tests are quick.
pub const TIMEOUT: Duration = Duration::from_millis(500);

pub fn config(fake: &FakeUpstream, credentials: Option<(&str, &str)>) -> Config {
    config_at(&fake.url(), credentials)
}

/// A config whose upstream [`NAME`] is at `url` (any server, e.g. a `RawUpstream`).
pub fn config_at(url: &str, credentials: Option<(&str, &str)>) -> Config {
    let mut config = Config::new(std::env::temp_dir());
    config.upstream_timeout = TIMEOUT;
    config.set_upstream(name(), UpstreamUrl::parse(url).unwrap());
    let ours = config
        .upstreams
        .iter_mut()
        .find(|u| u.name == name())
        .unwrap();
    ours.credentials = credentials.map(|(user, password)| Credentials {
        user: user.into(),
        password: password.into(),
    });
    config
}

pub fn upstreams(fake: &FakeUpstream, credentials: Option<(&str, &str)>) -> Upstreams {
    Upstreams::new(&config(fake, credentials), Default::default()).unwrap()
}

pub fn registry(fake: &FakeUpstream) -> Rc<Registry> {
    upstreams(fake, None).get(&name()).unwrap()
}

/// The [`Registry`] for an upstream at `url`.
pub fn registry_at(url: &str, credentials: Option<(&str, &str)>) -> Rc<Registry> {
    Upstreams::new(&config_at(url, credentials), Default::default())
        .unwrap()
        .get(&name())
        .unwrap()
}

/// Runs a test body on a `LocalExecutor`, as the server does.
pub fn run<T>(f: impl Future<Output = T>) -> T {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(f))
}

pub fn repo(s: &str) -> Repository {
    Repository::parse(s).unwrap()
}

pub fn tag(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

pub fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

pub async fn read_all(mut b: BlobStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    b.body.read_to_end(&mut out).await?;
    Ok(out)
}

/// A fake holding one image at `library/alpine:latest`.
pub fn with_image() -> (FakeUpstream, TestImage) {
    let fake = FakeUpstream::start();
    let img = TestImage::new(1, &[3000, 50_000]);
    fake.push_image("library/alpine", "latest", &img);
    (fake, img)
}
