//! The admin actions themselves (`admin.rs` has the routes and the token): parameters
//! from the query string, the mirror's answer as JSON.

use super::decode;
use crate::error::Error;
use crate::http::{Reply, Request, Status};
use crate::image_ref::ImageRef;
use crate::keep::{parse_platforms, Entry};
use crate::mirror::evict::NotEvicted;
use crate::mirror::jobs::Origin;
use crate::mirror::pins::PinSource;
use crate::mirror::prefetch::MAX_QUEUED;
use crate::mirror::Mirror;
use serde_json::json;

/// Most images one prefetch request may name.
pub const MAX_IMAGES_PER_REQUEST: usize = 64;

/// An admin action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fetch images now.
    Prefetch,
    /// Never evict an image (and fetch it).
    Pin,
    /// Undo a pin made through the admin API.
    Unpin,
    /// Delete an image's tag record and the blobs only it uses.
    Evict,
}

impl Action {
    /// The action a path's last segment names.
    pub fn parse(name: &str) -> Option<Action> {
        match name {
            "prefetch" => Some(Action::Prefetch),
            "pin" => Some(Action::Pin),
            "unpin" => Some(Action::Unpin),
            "evict" => Some(Action::Evict),
            _ => None,
        }
    }
}

/// The query's `image=` values and its `platform=` list.
fn params(req: &Request) -> Result<(Vec<ImageRef>, Vec<crate::image_ref::Platform>), Error> {
    let mut images = Vec::new();
    let mut platforms = Vec::new();
    for kv in req.query.as_deref().unwrap_or("").split('&') {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        match k {
            "image" => {
                if images.len() == MAX_IMAGES_PER_REQUEST {
                    return Err(Error::Malformed(format!(
                        "more than {MAX_IMAGES_PER_REQUEST} images in one request"
                    )));
                }
                images.push(ImageRef::parse(&decode(v)?).map_err(Error::Malformed)?);
            }
            "platform" => platforms = parse_platforms(&decode(v)?).map_err(Error::Malformed)?,
            _ => {}
        }
    }
    if images.is_empty() {
        return Err(Error::Malformed(
            "name the image: ?image=REPOSITORY:TAG (e.g. ?image=ghcr.io/org/app:1.4)".into(),
        ));
    }
    Ok((images, platforms))
}

/// The only image of a request that may name one.
fn one(images: Vec<ImageRef>) -> Result<ImageRef, Error> {
    let n = images.len();
    let mut it = images.into_iter();
    match (it.next(), n) {
        (Some(i), 1) => Ok(i),
        _ => Err(Error::Malformed("this action takes one image".into())),
    }
}

fn full() -> Error {
    Error::AdminRefused(format!(
        "{MAX_QUEUED} prefetches are already waiting; try again when some are done"
    ))
}

/// Runs `action` (the token was checked).
pub fn run(mirror: &Mirror, req: &Request, action: Action) -> Result<Reply, Error> {
    let (images, platforms) = params(req)?;
    for i in &images {
        if mirror.upstreams.get(&i.upstream).is_none() {
            return Err(Error::UnknownUpstream(i.upstream.to_string()));
        }
    }
    match action {
        Action::Prefetch => {
            let mut ids = Vec::new();
            for image in images {
                let entry = Entry {
                    image,
                    platforms: platforms.clone(),
                };
                ids.push(
                    mirror
                        .queue_prefetch(entry, Origin::Admin)
                        .ok_or_else(full)?,
                );
            }
            Ok(Reply::json(
                Status::ACCEPTED,
                json!({ "jobs": ids }).to_string(),
            ))
        }
        Action::Pin => {
            let image = one(images)?;
            if let Some((_, PinSource::Keep)) = mirror.pins().find(&image) {
                return Err(Error::AdminRefused(format!(
                    "{image} is in the keep list (--keep) already"
                )));
            }
            let entry = Entry {
                image: image.clone(),
                platforms,
            };
            mirror.pins().pin(entry.clone())?;
            mirror.apply_pins();
            let job = mirror.queue_prefetch(entry, Origin::Pin).ok_or_else(full)?;
            log::info!("{image} pinned on request");
            let body = json!({ "pinned": image.to_string(), "job": job });
            Ok(Reply::json(Status::ACCEPTED, body.to_string()))
        }
        Action::Unpin => {
            let image = one(images)?;
            match mirror.pins().find(&image) {
                Some((_, PinSource::Keep)) => Err(Error::AdminRefused(format!(
                    "{image} is in the keep list (--keep): remove it there and send the \
                     mirror SIGHUP (systemctl reload regmirror)"
                ))),
                None => Err(Error::AdminRefused(format!("{image} is not pinned"))),
                Some((_, PinSource::Admin)) => {
                    mirror.pins().unpin(&image)?;
                    mirror.apply_pins();
                    log::info!("{image} unpinned on request");
                    let body = json!({ "unpinned": image.to_string() });
                    Ok(Reply::json(Status::OK, body.to_string()))
                }
            }
        }
        Action::Evict => {
            let image = one(images)?;
            match mirror.evict_image(&image) {
                Ok(freed) => {
                    let body = json!({ "evicted": image.to_string(), "freed_bytes": freed });
                    Ok(Reply::json(Status::OK, body.to_string()))
                }
                Err(NotEvicted::Unknown) => Err(Error::ManifestUnknown),
                Err(NotEvicted::Pinned(source)) => Err(Error::AdminRefused(format!(
                    "{image} is pinned ({}): unpin it first",
                    match source {
                        PinSource::Keep => "by the keep list, --keep",
                        PinSource::Admin => "POST /_regmirror/admin/unpin",
                    }
                ))),
            }
        }
    }
}
