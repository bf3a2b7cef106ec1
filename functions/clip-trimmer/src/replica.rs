//! Reading only what a clip needs from a recording in S3.
//!
//! A *replica* is a local sparse file the size of the recording, in which only the parts we
//! fetched hold data: first the MP4's `ftyp` and `moov` boxes (the index: where every sample
//! is and when it plays), found by walking the top-level boxes with a few small ranged GETs;
//! then, once the clip is planned from that index, the one byte range holding its samples.
//! ffmpeg reads the replica as the local file it appears to be and only ever touches the
//! fetched parts, so a 60 s clip from a 10-minute recording reads about 60 s worth of bytes
//! (the seed's service downloaded every recording whole).
//!
//! A recording that is not a plain (non-fragmented) MP4/MOV, or whose boxes do not add up,
//! is fetched whole instead (logged with the reason): slower, never wrong.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use shared::storage::{download_to_file, local_io};
use shared::{Code, ProcessingError};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// The first read: enough for `ftyp` and, in a faststart file, usually the whole `moov`.
const FIRST_READ: u64 = 256 * 1024;
/// The first sample bytes fetched: enough for a key frame and some audio, which ffprobe decodes
/// to learn the pixel format and profile when it opens the file.
const FIRST_SAMPLES: u64 = 256 * 1024;
/// A top-level box header is at most 16 bytes (size, type, 64-bit size).
const BOX_HEADER: u64 = 16;
/// An MP4 has a handful of top-level boxes; more means this is not one.
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// A recording's local stand-in and what it cost to make.
#[derive(Debug)]
pub struct Replica {
    pub path: PathBuf,
    pub size: u64,
    /// Bytes received from S3 for this recording so far.
    pub bytes_fetched: u64,
    /// Every byte is present (fetched whole).
    pub complete: bool,
    /// Why it was fetched whole, if it was.
    pub whole_reason: Option<String>,
    bucket: String,
    key: String,
}

impl Replica {
    /// Fetches the index of `s3://bucket/key` into a sparse file at `path`.
    pub async fn open(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<Replica, ProcessingError> {
        let (first, size) = get_range(s3, bucket, key, 0, FIRST_READ).await?;
        let mut replica = Replica {
            path: path.to_owned(),
            size,
            bytes_fetched: first.len() as u64,
            complete: false,
            whole_reason: None,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        if size == 0 {
            return Err(ProcessingError::failed(
                Code::RecordingCorrupt,
                format!("recording s3://{bucket}/{key} is empty (0 bytes)"),
            ));
        }
        let file = tokio::fs::File::create(path)
            .await
            .map_err(local_io("creating", path))?;
        file.set_len(size).await.map_err(local_io("sizing", path))?;
        drop(file);
        replica.write_at(0, &first).await?;
        if first.len() as u64 >= size {
            replica.complete = true;
            return Ok(replica);
        }
        match replica.fetch_index(s3, &first).await? {
            Ok(()) => Ok(replica),
            Err(reason) => {
                replica.fetch_whole(s3, reason).await?;
                Ok(replica)
            }
        }
    }

    /// Makes bytes `[start, end)` present.
    pub async fn fetch_range(&mut self, s3: &aws_sdk_s3::Client, start: u64, end: u64) -> Result<(), ProcessingError> {
        if self.complete || start >= end {
            return Ok(());
        }
        let (bytes, _) = get_range(s3, &self.bucket, &self.key, start, end - start).await?;
        self.bytes_fetched += bytes.len() as u64;
        self.write_at(start, &bytes).await
    }

    /// Replaces the replica by the whole object (a fallback, logged with its reason).
    pub async fn fetch_whole(&mut self, s3: &aws_sdk_s3::Client, reason: String) -> Result<(), ProcessingError> {
        tracing::info!(key = %self.key, %reason, "fetching the whole recording");
        let bytes = download_to_file(s3, &self.bucket, &self.key, &self.path)
            .await
            .map_err(|e| recording_error(&self.bucket, &self.key, e))?;
        self.bytes_fetched += bytes;
        self.size = bytes;
        self.complete = true;
        self.whole_reason = Some(reason);
        Ok(())
    }

    /// Walks the top-level boxes and fetches `moov`, and the first samples of `mdat` (ffprobe
    /// decodes them to learn the codec parameters). `Ok(Err(reason))`: not an MP4 we can read
    /// by ranges.
    async fn fetch_index(
        &mut self,
        s3: &aws_sdk_s3::Client,
        first: &[u8],
    ) -> Result<Result<(), String>, ProcessingError> {
        let mut offset = 0u64;
        let mut moov_found = false;
        let mut mdat_payload = None;
        for _ in 0..MAX_TOP_LEVEL_BOXES {
            if offset + 8 > self.size || (moov_found && mdat_payload.is_some()) {
                break;
            }
            let header = if offset + BOX_HEADER <= first.len() as u64 {
                first[offset as usize..(offset + BOX_HEADER) as usize].to_vec()
            } else {
                let want = BOX_HEADER.min(self.size - offset);
                let (bytes, _) = get_range(s3, &self.bucket, &self.key, offset, want).await?;
                self.bytes_fetched += bytes.len() as u64;
                bytes
            };
            let Some(parsed) = BoxHeader::parse(&header, self.size - offset) else {
                return Ok(Err(format!("no MP4 box at byte {offset}")));
            };
            match &parsed.kind {
                b"moov" => {
                    let end = offset + parsed.size;
                    let moov = if end <= first.len() as u64 {
                        first[offset as usize..end as usize].to_vec()
                    } else {
                        let (bytes, _) = get_range(s3, &self.bucket, &self.key, offset, parsed.size).await?;
                        self.bytes_fetched += bytes.len() as u64;
                        bytes
                    };
                    if contains_box(&moov[parsed.header_len as usize..], b"mvex") {
                        return Ok(Err("fragmented MP4 (its index is spread through the file)".to_owned()));
                    }
                    self.write_at(offset, &moov).await?;
                    moov_found = true;
                }
                b"mdat" => mdat_payload = Some(offset + parsed.header_len),
                _ => {}
            }
            offset += parsed.size;
        }
        if !moov_found {
            return Ok(Err("not an MP4/MOV with a moov box".to_owned()));
        }
        if let Some(start) = mdat_payload {
            let end = (start + FIRST_SAMPLES).min(self.size);
            let already = first.len() as u64;
            if end > already {
                self.fetch_range(s3, start.max(already), end).await?;
            }
        }
        Ok(Ok(()))
    }

    async fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), ProcessingError> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .await
            .map_err(local_io("opening", &self.path))?;
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(local_io("seeking in", &self.path))?;
        file.write_all(bytes).await.map_err(local_io("writing", &self.path))?;
        file.flush().await.map_err(local_io("writing", &self.path))
    }
}

#[derive(Debug, PartialEq)]
struct BoxHeader {
    kind: [u8; 4],
    size: u64,
    header_len: u64,
}

impl BoxHeader {
    /// Parses a box header; `None` unless it is plausible (printable type, size within
    /// `available`).
    fn parse(bytes: &[u8], available: u64) -> Option<BoxHeader> {
        let size32 = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
        let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return None;
        }
        let (size, header_len) = match size32 {
            0 => (available, 8),
            1 => (u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?), 16),
            n => (u64::from(n), 8),
        };
        (size >= header_len && size <= available).then_some(BoxHeader { kind, size, header_len })
    }
}

/// Whether a box of `kind` is among the direct children in `body`.
fn contains_box(mut body: &[u8], kind: &[u8; 4]) -> bool {
    while let Some(header) = BoxHeader::parse(body, body.len() as u64) {
        if &header.kind == kind {
            return true;
        }
        body = &body[header.size as usize..];
        if header.size == 0 {
            break;
        }
    }
    false
}

/// GETs up to `len` bytes from `start`; returns them and the object's total size.
async fn get_range(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    start: u64,
    len: u64,
) -> Result<(Vec<u8>, u64), ProcessingError> {
    let response = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={start}-{}", start + len.max(1) - 1))
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            // S3 answers 416 to any range of an empty object.
            if err.raw_response().map(|r| r.status().as_u16()) == Some(416) {
                return Ok((Vec::new(), 0));
            }
            return Err(ProcessingError::from_sdk_with(
                "S3 GetObject (range)",
                err,
                |code, status| {
                    (code == "NoSuchKey" || status == Some(404)).then(|| {
                        ProcessingError::failed(
                            Code::RecordingMissing,
                            format!("the camera API lists s3://{bucket}/{key}, which does not exist"),
                        )
                    })
                },
            ));
        }
    };
    let total = response
        .content_range()
        .and_then(|range| range.rsplit('/').next())
        .and_then(|total| total.parse().ok())
        .or(response.content_length().map(|l| l.max(0) as u64));
    let bytes = response
        .body
        .collect()
        .await
        .map_err(|e| ProcessingError::retryable(Code::S3ReadFailed, format!("reading s3://{bucket}/{key}: {e}")))?
        .to_vec();
    let total = total.unwrap_or(start + bytes.len() as u64);
    Ok((bytes, total))
}

fn recording_error(bucket: &str, key: &str, err: ProcessingError) -> ProcessingError {
    if err.code == Code::SourceMissing {
        ProcessingError::failed(Code::RecordingMissing, format!("s3://{bucket}/{key} does not exist"))
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn box_headers_in_all_three_size_forms() {
        let small = boxed(b"ftyp", b"isom");
        assert_eq!(
            BoxHeader::parse(&small, 100),
            Some(BoxHeader {
                kind: *b"ftyp",
                size: 12,
                header_len: 8
            })
        );
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&5_000_000_000u64.to_be_bytes());
        assert_eq!(BoxHeader::parse(&large, 6_000_000_000).unwrap().size, 5_000_000_000);
        let mut to_end = 0u32.to_be_bytes().to_vec();
        to_end.extend_from_slice(b"mdat");
        assert_eq!(BoxHeader::parse(&to_end, 777).unwrap().size, 777);
    }

    #[test]
    fn implausible_headers_are_not_boxes() {
        assert_eq!(
            BoxHeader::parse(b"\x00\x00\x00\x08\x00\x01\x02\x03", 100),
            None,
            "binary type"
        );
        assert_eq!(
            BoxHeader::parse(&boxed(b"mdat", &[0; 100]), 50),
            None,
            "longer than the file"
        );
        assert_eq!(BoxHeader::parse(b"GIF89a\x01\x00", 100), None);
        assert_eq!(BoxHeader::parse(b"abc", 100), None, "truncated");
    }

    #[test]
    fn fragmented_movies_are_recognised() {
        let plain = [boxed(b"mvhd", &[0; 20]), boxed(b"trak", &[0; 8])].concat();
        let fragmented = [plain.clone(), boxed(b"mvex", &[0; 8])].concat();
        assert!(!contains_box(&plain, b"mvex"));
        assert!(contains_box(&fragmented, b"mvex"));
    }
}
