//! Streaming S3 I/O between objects and local files.
//!
//! Nothing here holds a whole object in memory: downloads are written chunk by chunk as they
//! arrive, small uploads stream from the file, and large ones go up as a multipart upload whose
//! parts are read from disk on demand. An object appears at its key only when complete
//! (PutObject and CompleteMultipartUpload are atomic), so a crash mid-upload never leaves a
//! partial object at a final key; an abandoned multipart upload is aborted (and a bucket
//! lifecycle rule cleans up after a hard kill).

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::byte_stream::Length;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::{Code, ProcessingError};

/// Objects above this size are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Part size for multipart uploads (S3 allows 5 MiB to 5 GiB; 10,000 parts at most).
pub const PART_SIZE: u64 = 16 * 1024 * 1024;
/// Parts in flight at once; each is streamed from disk, so memory stays small.
const PARTS_IN_FLIGHT: usize = 4;

/// Maps "the object is not there" to a rejection: a message about an object that no longer
/// exists will not succeed on a retry.
fn missing_source(bucket: &str, key: &str) -> impl FnOnce(&str, Option<u16>) -> Option<ProcessingError> {
    let what = format!("s3://{bucket}/{key}");
    move |code, status| {
        (code == "NoSuchKey" || code == "NoSuchBucket" || code == "NotFound" || status == Some(404))
            .then(|| ProcessingError::rejected(Code::SourceMissing, format!("{what} does not exist (any more)")))
    }
}

/// Downloads `s3://bucket/key` into `dest`, returning the bytes written.
pub async fn download_to_file(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    dest: &Path,
) -> Result<u64, ProcessingError> {
    let response = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| ProcessingError::from_sdk_with("S3 GetObject", e, missing_source(bucket, key)))?;
    let mut body = response.body;
    let mut file = tokio::fs::File::create(dest).await.map_err(local_io("create", dest))?;
    let mut written = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ProcessingError::retryable(Code::S3ReadFailed, format!("reading s3://{bucket}/{key}: {e}")))?
    {
        file.write_all(&chunk).await.map_err(local_io("write", dest))?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(local_io("flush", dest))?;
    Ok(written)
}

/// How to store an uploaded object.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`). Values must be ASCII; see [`metadata_value`].
    pub metadata: Vec<(String, String)>,
}

/// Uploads `path` to `s3://bucket/key`, returning the object size.
pub async fn upload_file(
    s3: &aws_sdk_s3::Client,
    path: &Path,
    bucket: &str,
    key: &str,
    options: &UploadOptions,
) -> Result<u64, ProcessingError> {
    let size = tokio::fs::metadata(path).await.map_err(local_io("stat", path))?.len();
    if size <= MULTIPART_THRESHOLD {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| ProcessingError::retryable(Code::LocalIo, format!("opening {}: {e}", path.display())))?;
        let mut request = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .content_length(size as i64);
        if let Some(content_type) = &options.content_type {
            request = request.content_type(content_type);
        }
        for (name, value) in &options.metadata {
            request = request.metadata(name, value);
        }
        request
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("S3 PutObject", e))?;
    } else {
        upload_multipart(s3, path, size, bucket, key, options).await?;
    }
    Ok(size)
}

async fn upload_multipart(
    s3: &aws_sdk_s3::Client,
    path: &Path,
    size: u64,
    bucket: &str,
    key: &str,
    options: &UploadOptions,
) -> Result<(), ProcessingError> {
    let mut request = s3.create_multipart_upload().bucket(bucket).key(key);
    if let Some(content_type) = &options.content_type {
        request = request.content_type(content_type);
    }
    for (name, value) in &options.metadata {
        request = request.metadata(name, value);
    }
    let created = request
        .send()
        .await
        .map_err(|e| ProcessingError::from_sdk("S3 CreateMultipartUpload", e))?;
    let upload_id = created
        .upload_id
        .ok_or_else(|| ProcessingError::retryable(Code::AwsError, "CreateMultipartUpload returned no upload id"))?;

    let part_count = size.div_ceil(PART_SIZE);
    let parts = futures::stream::iter(0..part_count)
        .map(|index| {
            let upload_id = upload_id.clone();
            async move {
                let offset = index * PART_SIZE;
                let length = PART_SIZE.min(size - offset);
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(|e| {
                        ProcessingError::retryable(Code::LocalIo, format!("reading {}: {e}", path.display()))
                    })?;
                let part_number = (index + 1) as i32;
                let uploaded = s3
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(part_number)
                    .content_length(length as i64)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| ProcessingError::from_sdk("S3 UploadPart", e))?;
                Ok::<_, ProcessingError>(
                    CompletedPart::builder()
                        .part_number(part_number)
                        .set_e_tag(uploaded.e_tag)
                        .build(),
                )
            }
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await;

    let completed = match parts {
        Ok(parts) => s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| ProcessingError::from_sdk("S3 CompleteMultipartUpload", e)),
        Err(e) => Err(e),
    };
    if let Err(err) = completed {
        // Best effort: a failed abort leaves parts that the bucket's lifecycle rule removes.
        if let Err(abort) = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await
        {
            tracing::warn!(error = %abort, key, "could not abort the multipart upload");
        }
        return Err(err);
    }
    Ok(())
}

/// A presigned GET URL of `bucket/key`, valid for `ttl`: what ffprobe and ffmpeg read a source
/// through, by byte ranges, instead of downloading it (they read the index and the stretch they
/// need). It carries the caller's right to read the object, so it is never logged.
pub async fn presigned_get_url(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    ttl: std::time::Duration,
) -> Result<std::ffi::OsString, ProcessingError> {
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
        .map_err(|e| ProcessingError::retryable(Code::PresignFailed, e.to_string()))?;
    let request = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presigning)
        .await
        .map_err(|e| ProcessingError::from_sdk("S3 presign GetObject", e))?;
    Ok(std::ffi::OsString::from(request.uri()))
}

/// Object metadata, when the object exists.
pub async fn head_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, ProcessingError> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(output) => Ok(Some(output)),
        Err(err) => {
            let not_found = matches!(&err, aws_sdk_s3::error::SdkError::ServiceError(e) if e.err().is_not_found())
                || err.raw_response().map(|r| r.status().as_u16()) == Some(404);
            if not_found {
                Ok(None)
            } else {
                Err(ProcessingError::from_sdk("S3 HeadObject", err))
            }
        }
    }
}

/// S3 user metadata travels in HTTP headers, so it must be ASCII: non-ASCII bytes, controls
/// and `%` itself are percent-encoded (decode with `percent_decode_str`).
pub fn metadata_value(value: &str) -> String {
    const METADATA: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    percent_encoding::utf8_percent_encode(value, METADATA).to_string()
}

/// A key as a URL path (no leading `/`): each segment percent-encoded, everything but letters,
/// digits and `-._~`, so spaces, `+` and unicode in keys survive every HTTP client.
pub fn key_url_path(key: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    key.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The inverse of [`metadata_value`].
pub fn decode_metadata_value(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// A local file-system fault (`LOCAL_IO`, retryable: a full or busy /tmp may be fine next time),
/// naming what was done to which path.
pub fn local_io<'a>(action: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> ProcessingError + 'a {
    move |e| ProcessingError::retryable(Code::LocalIo, format!("{action} {}: {e}", path.display()))
}

/// A fresh work directory under `parent` (Lambda's /tmp), removed when dropped: one per
/// message, so nothing of one message's files is seen by the next.
pub fn work_dir(parent: &Path, prefix: &str) -> Result<tempfile::TempDir, ProcessingError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(local_io("creating a work dir in", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(key_url_path("a b/c+d/é.mp4"), "a%20b/c%2Bd/%C3%A9.mp4");
        assert_eq!(key_url_path("x/y_z-1.~m3u8"), "x/y_z-1.~m3u8");
    }

    #[test]
    fn metadata_values_are_ascii() {
        assert_eq!(metadata_value("plain key.mp4"), "plain key.mp4");
        assert_eq!(metadata_value("100%"), "100%25");
        let encoded = metadata_value("café 🎬.mp4");
        assert!(encoded.is_ascii(), "{encoded}");
        assert_eq!(decode_metadata_value(&encoded), "café 🎬.mp4");
        assert_eq!(decode_metadata_value(&metadata_value("100% done")), "100% done");
        assert_eq!(
            percent_encoding::percent_decode_str(&encoded).decode_utf8().unwrap(),
            "café 🎬.mp4"
        );
    }
}
