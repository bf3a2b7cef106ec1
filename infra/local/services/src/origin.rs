//! The local stand-in for the CloudFront distribution in front of the output bucket: it serves
//! `OutputBucket` by path, as viewers see it through CloudFront (`GET /<key>`, keys
//! percent-decoded), with byte ranges (`Range: bytes=a-b` → 206 and exactly those bytes, 416
//! when unsatisfiable), `HEAD`, and the content type of each kind of output. `GET /` is an index
//! page listing every output under `renditions/`, `mediaconvert/`, `clips/` and `gifs/`, with an
//! HTML5 player for videos, images for thumbnails and GIFs, and each job's result status.
//!
//! Results: the origin subscribes a queue of its own to the results topic and keeps every JSON
//! message that has a `status` field (each job kind has its own shape; only `status`, and where
//! present `job`, `source.key`, `reason` and any `key` fields naming outputs, are read).
//!
//! Objects are streamed from S3 chunk by chunk; nothing is held whole in memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{full, Body, ResponseFuture};
use stack_clients::{list_keys, Clients, Tap};

/// The prefixes of the output bucket that users see.
pub const PREFIXES: &[&str] = &["renditions/", "mediaconvert/", "clips/", "gifs/"];

/// A byte range to serve, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one this server answers with the whole object (several ranges).
    Whole,
    Partial(ByteRange),
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2). Several ranges are answered with the whole
/// object, which the RFC allows; a malformed header is ignored likewise.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // A suffix: the last N bytes.
        let Ok(suffix) = last.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if suffix == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange {
            first: size.saturating_sub(suffix),
            last: size - 1,
        }
    } else {
        let Ok(first) = first.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        let last = if last.is_empty() {
            size.saturating_sub(1)
        } else {
            match last.parse::<u64>() {
                Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                _ => return RangeRequest::Whole,
            }
        };
        if first >= size {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange { first, last }
    };
    RangeRequest::Partial(range)
}

/// The content type viewers need for each kind of output.
pub fn content_type_for(key: &str) -> Option<&'static str> {
    let extension = key.rsplit('.').next()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mpd" => "application/dash+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "json" => "application/json",
        "vtt" => "text/vtt",
        _ => return None,
    })
}

#[derive(Clone)]
pub struct Origin {
    inner: Arc<Inner>,
}

struct Inner {
    clients: OnceCell<Clients>,
    /// Every result seen, oldest first.
    results: Mutex<Vec<Value>>,
}

impl Origin {
    /// Creates the origin and starts following the results topic in the background.
    pub fn start() -> Origin {
        let origin = Origin {
            inner: Arc::new(Inner {
                clients: OnceCell::new(),
                results: Mutex::new(Vec::new()),
            }),
        };
        let follower = origin.clone();
        tokio::spawn(async move { follower.follow_results().await });
        origin
    }

    pub fn handle(&self, request: Request<Incoming>) -> ResponseFuture {
        let origin = self.clone();
        Box::pin(async move { origin.route(request).await })
    }

    async fn clients(&self) -> &Clients {
        self.inner.clients.get_or_init(Clients::from_env).await
    }

    /// Subscribes a queue of its own to the results topic and keeps what arrives, starting over
    /// when the stack is (re)deployed under it.
    async fn follow_results(&self) {
        loop {
            let Some(topic) = results_topic_arn() else {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            };
            let tap = match Tap::subscribe(self.clients().await, &topic, "origin").await {
                Ok(tap) => tap,
                Err(err) => {
                    tracing::debug!(error = %err, "results topic not reachable yet");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            tracing::info!(topic, queue = %tap.queue_url, "origin follows the results topic");
            loop {
                match tap.poll().await {
                    Ok(bodies) => {
                        let mut results = self.inner.results.lock().unwrap();
                        results.extend(bodies.into_iter().filter(|b| b.get("status").is_some()));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "results queue lost; subscribing again");
                        break;
                    }
                }
                // The stack was redeployed with another topic: follow the new one.
                if results_topic_arn().as_deref() != Some(topic.as_str()) {
                    break;
                }
            }
            tap.close().await;
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        }
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/" | "/index.html" => self.index().await,
            "/_results.json" => {
                let results = self.inner.results.lock().unwrap().clone();
                super::json(StatusCode::OK, &Value::Array(results))
            }
            _ => {
                let key = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
                    .decode_utf8_lossy()
                    .into_owned();
                let range = request
                    .headers()
                    .get(hyper::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                self.object(&key, range.as_deref(), method == Method::HEAD).await
            }
        }
    }

    async fn object(&self, key: &str, range: Option<&str>, head_only: bool) -> Response<Body> {
        let Some(bucket) = output_bucket() else {
            return not_deployed();
        };
        let s3 = &self.clients().await.s3;
        let head = match shared::storage::head_object(s3, &bucket, key).await {
            Ok(Some(head)) => head,
            Ok(None) => return text(StatusCode::NOT_FOUND, &format!("no object {key:?}")),
            Err(err) => return text(StatusCode::BAD_GATEWAY, &err.to_string()),
        };
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let content_type = content_type_for(key)
            .map(str::to_owned)
            .or_else(|| head.content_type().map(str::to_owned))
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let mut response = Response::builder()
            .header("content-type", content_type)
            .header("accept-ranges", "bytes")
            .header("cache-control", "public, max-age=60");
        if let Some(etag) = head.e_tag() {
            response = response.header("etag", etag);
        }
        let (status, range) = match parse_range(range, size) {
            RangeRequest::Whole => (StatusCode::OK, None),
            RangeRequest::Partial(range) => (StatusCode::PARTIAL_CONTENT, Some(range)),
            RangeRequest::Unsatisfiable => {
                return response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header("content-range", format!("bytes */{size}"))
                    .body(full(Bytes::new()))
                    .expect("valid response");
            }
        };
        let length = match range {
            Some(r) => {
                response = response.header("content-range", format!("bytes {}-{}/{size}", r.first, r.last));
                r.last - r.first + 1
            }
            None => size,
        };
        response = response.status(status).header("content-length", length);
        if head_only || length == 0 {
            return response.body(full(Bytes::new())).expect("valid response");
        }
        let mut get = s3.get_object().bucket(&bucket).key(key);
        if let Some(r) = range {
            get = get.range(format!("bytes={}-{}", r.first, r.last));
        }
        let object = match get.send().await {
            Ok(object) => object,
            Err(err) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    &shared::error::DisplayErrorChain(&err).to_string(),
                )
            }
        };
        response.body(stream_body(object.body)).expect("valid response")
    }

    async fn index(&self) -> Response<Body> {
        let Some(bucket) = output_bucket() else {
            return not_deployed();
        };
        let s3 = &self.clients().await.s3;
        let mut listed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for prefix in PREFIXES {
            match list_keys(s3, &bucket, prefix).await {
                Ok(keys) => {
                    listed.insert(prefix, keys);
                }
                Err(err) => return text(StatusCode::BAD_GATEWAY, &err.to_string()),
            }
        }
        let results = self.inner.results.lock().unwrap().clone();
        let html = render_index(&bucket, &listed, &results);
        Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .header("cache-control", "no-store")
            .body(full(html))
            .expect("valid response")
    }
}

/// The stack's results topic (`RESULTS_TOPIC_ARN`, set by `stack.sh` from the stack's outputs;
/// a redeploy restarts the services with the new value).
fn results_topic_arn() -> Option<String> {
    std::env::var("RESULTS_TOPIC_ARN").ok().filter(|v| !v.is_empty())
}

/// The stack's output bucket (`OUTPUT_BUCKET`); `None` when no stack is deployed (see
/// [`not_deployed`]).
fn output_bucket() -> Option<String> {
    std::env::var("OUTPUT_BUCKET").ok().filter(|v| !v.is_empty())
}

fn not_deployed() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the stack is not deployed (make stack)",
    )
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(format!("{message}\n")))
        .expect("valid response")
}

/// Streams an S3 body to the client chunk by chunk (a reader task feeding a small channel).
fn stream_body(mut body: aws_sdk_s3::primitives::ByteStream) -> Body {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, crate::BoxError>>(4);
    tokio::spawn(async move {
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(bytes)) => Ok(Frame::data(bytes)),
                Some(Err(err)) => Err(Box::new(err) as crate::BoxError),
            };
            let failed = chunk.is_err();
            // A closed channel means the viewer went away: stop reading.
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    StreamBody::new(stream).boxed()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL path of a key (each segment percent-encoded).
pub fn href(key: &str) -> String {
    format!("/{}", shared::storage::key_url_path(key))
}

/// Every string under a field named `key` in a result, except the source's: the outputs it names.
fn output_keys(result: &Value, out: &mut Vec<String>) {
    fn walk(value: &Value, in_source: bool, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (name, child) in map {
                    match (name.as_str(), child) {
                        ("key", Value::String(key)) if !in_source => out.push(key.clone()),
                        ("source", _) => walk(child, true, out),
                        _ => walk(child, in_source, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, in_source, out)),
            _ => {}
        }
    }
    walk(result, false, out);
}

fn field<'a>(result: &'a Value, pointer: &str) -> &'a str {
    result.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The index page. Pure, so it is unit-tested.
pub fn render_index(bucket: &str, listed: &BTreeMap<&str, Vec<String>>, results: &[Value]) -> String {
    // Output key → the status of the (latest) result that names it.
    let mut status_of: HashMap<String, (String, String)> = HashMap::new();
    for result in results {
        let mut keys = Vec::new();
        output_keys(result, &mut keys);
        for key in keys {
            status_of.insert(
                key,
                (field(result, "/job").to_owned(), field(result, "/status").to_owned()),
            );
        }
    }
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>video-suite outputs</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}}
section{{margin-bottom:2rem}} li{{margin:.6rem 0}} video,img{{max-width:32rem;display:block;margin-top:.3rem;background:#000}}
.status{{font-size:.8rem;padding:.1rem .4rem;border-radius:.3rem;background:#eee;margin-left:.5rem}}
.available{{background:#cfc}} .rejected,.failed,.error{{background:#fcc}} .canceled{{background:#ffc}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;font-size:.9rem}}
</style></head><body>
<h1>Outputs of <code>{}</code></h1>
<p>The local stand-in for the CloudFront distribution: every object below is served from the output bucket by its path, with byte ranges.</p>
"#,
        escape(bucket)
    );
    // HLS segments are counted, not listed: a ladder has hundreds.
    let is_segment = |key: &str| key.ends_with(".ts") || key.ends_with(".m4s");
    for (prefix, keys) in listed {
        let segments = keys.iter().filter(|k| is_segment(k)).count();
        let _ = write!(
            html,
            "<section><h2><code>{}</code> ({} objects",
            escape(prefix),
            keys.len()
        );
        if segments > 0 {
            let _ = write!(html, ", {segments} HLS segments not listed");
        }
        html.push_str(")</h2><ul>");
        for key in keys.iter().filter(|k| !is_segment(k)) {
            let link = escape(&href(key));
            let shown = escape(key);
            let _ = write!(html, r#"<li><a href="{link}">{shown}</a>"#);
            if let Some((job, status)) = status_of.get(key) {
                let _ = write!(
                    html,
                    r#"<span class="status {s}" data-status="{s}">{j} {s}</span>"#,
                    s = escape(status),
                    j = escape(job)
                );
            }
            match content_type_for(key).unwrap_or("") {
                t if t.starts_with("video/") && !t.ends_with("mp2t") => {
                    let _ = write!(
                        html,
                        r#"<video controls preload="metadata" src="{link}" data-key="{shown}"></video>"#
                    );
                }
                t if t.starts_with("image/") => {
                    let _ = write!(html, r#"<img loading="lazy" src="{link}" alt="{shown}">"#);
                }
                _ => {}
            }
            html.push_str("</li>");
        }
        html.push_str("</ul></section>");
    }
    html.push_str(
        "<section><h2>Results</h2><table id=\"results\"><tr><th>job</th><th>status</th><th>source</th><th>reason</th></tr>",
    );
    for result in results.iter().rev() {
        let reason = match (field(result, "/reason/code"), field(result, "/reason/message")) {
            ("", _) => String::new(),
            (code, message) => format!("{code}: {message}"),
        };
        let status = field(result, "/status");
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td class="{s}">{s}</td><td>{}</td><td>{}</td></tr>"#,
            escape(field(result, "/job")),
            escape(field(result, "/source/key")),
            escape(&reason),
            s = escape(status),
        );
    }
    html.push_str("</table></section>");
    // Each player reports whether its video loaded: shown on the page and read by the tests.
    html.push_str(
        r#"<h2>Players</h2><pre id="media-state">[]</pre>
<script>
const states = {};
const show = () => { document.getElementById('media-state').textContent = JSON.stringify(Object.values(states)); };
for (const video of document.querySelectorAll('video')) {
  const key = video.dataset.key;
  states[key] = {key, state: 'loading'};
  video.addEventListener('loadedmetadata', () => {
    states[key] = {key, state: 'loadedmetadata', width: video.videoWidth, height: video.videoHeight, duration: video.duration};
    show();
  });
  video.addEventListener('error', () => {
    states[key] = {key, state: 'error', code: video.error ? video.error.code : 0};
    show();
  });
}
show();
</script></body></html>
"#,
    );
    html
}

#[cfg(test)]
mod tests {
    use shared::contracts::clip::ClipStatus;
    use shared::contracts::{fixture, Job, ResultStatus};
    use shared::Code;

    use super::*;

    #[test]
    fn ranges() {
        let r = |first, last| RangeRequest::Partial(ByteRange { first, last });
        assert_eq!(parse_range(None, 100), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), r(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), r(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), r(90, 99));
        assert_eq!(parse_range(Some("bytes=-500"), 100), r(0, 99));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100), r(50, 99));
        assert_eq!(parse_range(Some("bytes=100-"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=9-3"), 100), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeRequest::Whole);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_for("a/b c-hd.MP4"), Some("video/mp4"));
        assert_eq!(content_type_for("x.m3u8"), Some("application/vnd.apple.mpegurl"));
        assert_eq!(content_type_for("x_00001.ts"), Some("video/mp2t"));
        assert_eq!(content_type_for("clips/t.png"), Some("image/png"));
        assert_eq!(content_type_for("gifs/a.gif"), Some("image/gif"));
        assert_eq!(content_type_for("noext"), None);
    }

    /// The results are the contracts' fixtures, as the functions publish them (one with markup
    /// in its reason, to show it escaped).
    #[test]
    fn the_index_lists_outputs_with_players_images_and_statuses() {
        let mediaconvert = fixture("result-mediaconvert-available.json");
        let sd_key = mediaconvert["mediaconvert"]["outputs"][1]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let clip = fixture("clip-result-available.json");
        let clip_key = clip["clip"]["key"].as_str().unwrap().to_owned();
        let mut rejected = fixture("result-rendition-rejected.json");
        rejected["reason"]["message"] = "<b>no</b>".into();
        let listed = BTreeMap::from([
            (
                "mediaconvert/",
                vec![
                    sd_key.clone(),
                    "mediaconvert/up/my cat&1-hd.mp4".to_owned(),
                    "mediaconvert/up/hls/c.m3u8".to_owned(),
                    "mediaconvert/up/hls/c_360p_00001.ts".to_owned(),
                ],
            ),
            ("clips/", vec![clip_key.clone(), "clips/c1/thumb.png".to_owned()]),
            ("gifs/", vec![]),
        ]);
        let results = vec![mediaconvert, clip, rejected];
        let html = render_index("out", &listed, &results);
        assert!(html.contains(r#"<video controls preload="metadata" src="/mediaconvert/up/my%20cat%261-hd.mp4" data-key="mediaconvert/up/my cat&amp;1-hd.mp4">"#), "{html}");
        let status = |key: &str, job: &str, status: &str| {
            format!(
                r#"{}</a><span class="status {status}" data-status="{status}">{job} {status}</span>"#,
                escape(key)
            )
        };
        let available = ResultStatus::Available.as_str();
        assert!(
            html.contains(&status(&sd_key, Job::Mediaconvert.as_str(), available)),
            "{html}"
        );
        assert!(
            html.contains(&status(&clip_key, "", ClipStatus::Available.as_str())),
            "{html}"
        );
        assert!(html.contains(r#"<img loading="lazy" src="/clips/c1/thumb.png""#));
        assert!(html.contains(r#"<a href="/mediaconvert/up/hls/c.m3u8">"#));
        assert!(!html.contains("c_360p_00001.ts"), "segments are counted, not listed");
        assert!(html.contains("1 HLS segments not listed"));
        assert!(
            html.contains(&format!("{}: &lt;b&gt;no&lt;/b&gt;", Code::CorruptInput)),
            "results are escaped"
        );
    }
}
