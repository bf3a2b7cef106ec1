//! Sources for the GIF converter's tests and demo, on an allow-listed loopback port: what a
//! hostile or unlucky web server would send, on demand.
//!
//! * `GET /redirect?to=<url>` → `302 Location: <url>` (a hop from an allowed host to anywhere)
//! * `GET /bytes?size=<n>[&chunked=1]` → `n` bytes, streamed, with or without `Content-Length`
//! * `GET /text` → a short `text/plain` body that is no video

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};

use super::{error, full, ResponseFuture};

const CHUNK: usize = 64 * 1024;

pub fn handle(request: Request<Incoming>) -> ResponseFuture {
    Box::pin(async move {
        let query: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        match request.uri().path() {
            "/redirect" => match query.get("to") {
                Some(to) => Response::builder()
                    .status(StatusCode::FOUND)
                    .header("location", to)
                    .body(full(Bytes::new()))
                    .unwrap_or_else(|e| error(StatusCode::BAD_REQUEST, e)),
                None => error(StatusCode::BAD_REQUEST, "redirect needs ?to="),
            },
            "/bytes" => {
                let Some(size) = query.get("size").and_then(|s| s.parse::<usize>().ok()) else {
                    return error(StatusCode::BAD_REQUEST, "bytes needs ?size=<n>");
                };
                let chunked = query.get("chunked").is_some_and(|c| c == "1");
                let chunks = (0..size.div_ceil(CHUNK)).map(move |i| {
                    let n = CHUNK.min(size - i * CHUNK);
                    Ok::<_, crate::BoxError>(Frame::data(Bytes::from(vec![0u8; n])))
                });
                let body = BodyExt::boxed(StreamBody::new(futures::stream::iter(chunks)));
                let mut response = Response::builder().header("content-type", "video/mp4");
                if !chunked {
                    response = response.header("content-length", size);
                }
                response
                    .body(body)
                    .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
            }
            "/text" => Response::builder()
                .header("content-type", "text/plain")
                .body(full("this is a text file, not a video\n"))
                .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e)),
            _ => error(StatusCode::NOT_FOUND, "no such source"),
        }
    })
}
