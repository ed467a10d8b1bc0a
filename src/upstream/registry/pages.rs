//! Listing pages from one upstream: a `tags/list` page and a `referrers` answer, each
//! passed on as upstream sent it (content type, `Link` or `OCI-Filters-Applied`, body).

use super::{Outcome, Registry};
use crate::error::UpstreamError;
use crate::media_type::MediaType;
use crate::reference::{Digest, Repository};
use crate::upstream::response::header;
use crate::upstream::MAX_MANIFEST_BYTES;
use http_types::{Method, Url};

/// Largest `tags/list` answer passed through: the same bound as a manifest (the body is
/// held in memory whole). Paginated lists stay far below it.
const MAX_TAGS_LIST_BYTES: usize = MAX_MANIFEST_BYTES;

/// One page of `tags/list` as upstream sent it.
#[derive(Debug)]
pub struct TagsPage {
    /// `Content-Type` as sent (`application/json` if none).
    pub content_type: String,
    /// `Link` as sent: where the next page is (`<…?last=…&n=…>; rel="next"`), if any.
    pub link: Option<String>,
    /// The body (≤ 4 MiB).
    pub body: Vec<u8>,
}

/// A `referrers` answer as upstream sent it.
#[derive(Debug)]
pub struct ReferrersPage {
    /// `Content-Type` as sent (the OCI index type if none).
    pub content_type: String,
    /// `OCI-Filters-Applied` as sent.
    pub filters_applied: Option<String>,
    /// The image index (≤ 4 MiB), byte for byte.
    pub body: Vec<u8>,
}
impl Registry {
    /// GET `tags/list`, passing on only the `n` and `last` parameters of `query`.
    pub async fn tags_list(
        &self,
        repo: &Repository,
        query: Option<&str>,
    ) -> Result<TagsPage, UpstreamError> {
        let repo = &self.remote(repo)?;
        let mut url = self.api_url(repo, "tags/list")?;
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            let parsed = Url::parse(&format!("http://x/?{q}")).map_err(|_| {
                UpstreamError::Protocol(format!("{}: bad tags/list query", self.url.host))
            })?;
            let kept: Vec<(String, String)> = parsed
                .query_pairs()
                .filter(|(k, _)| k == "n" || k == "last")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        }
        let res = self
            .call(
                Method::Get,
                url,
                &[("accept", "application/json")],
                repo,
                Outcome::AtHead,
            )
            .await?;
        let content_type = header(&res, "content-type")
            .unwrap_or("application/json")
            .to_owned();
        let link = header(&res, "link").map(str::to_owned);
        let body = self.read_body(res, MAX_TAGS_LIST_BYTES).await?;
        Ok(TagsPage {
            content_type,
            link,
            body,
        })
    }

    /// GET `referrers/<digest>` (distribution-spec 1.1), with `artifactType` passed on if
    /// given (already checked to be a media type). A registry without the API answers 404
    /// (`NotFound`): the caller then falls back to the tag schema.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ReferrersPage, UpstreamError> {
        let repo = &self.remote(repo)?;
        let mut url = self.api_url(repo, &format!("referrers/{digest}"))?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let accept = MediaType::OCI_INDEX.to_string();
        let res = self
            .call(
                Method::Get,
                url,
                &[("accept", &accept)],
                repo,
                Outcome::AtHead,
            )
            .await?;
        let content_type = header(&res, "content-type")
            .unwrap_or(MediaType::OCI_INDEX.as_str())
            .to_owned();
        let filters_applied = header(&res, "oci-filters-applied").map(str::to_owned);
        let body = self.read_body(res, MAX_MANIFEST_BYTES).await?;
        Ok(ReferrersPage {
            content_type,
            filters_applied,
            body,
        })
    }
}
