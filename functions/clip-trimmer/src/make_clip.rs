//! The clip pipeline: the recordings that cover a range (camera API, origin bucket), then only
//! the bytes of them the clip needs, cut into one clip, thumbnails of its first frame, both
//! uploaded, and the camera API told. A clip already stored for the same request and
//! recordings is reused instead (its object metadata says how it was made).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shared::contracts::clip::{CappedSize, ClipLink, ClipMode, ThumbnailLinks};
use shared::ffmpeg::Deadline;
use shared::storage::{head_object, upload_file, work_dir, UploadOptions};
use shared::{Code, ProcessingError};

use crate::camera_api::ClipNotice;
use crate::cut::{self, Cutter, Mode, Part};
use crate::decide::fingerprint;
use crate::media;
use crate::replica::Replica;
use crate::request::ClipRequest;
use crate::schedule::{self, Coverage};
use crate::thumbnails;
use crate::Trimmer;

/// A clip made (or found already made) and what it cost; the benchmarks read the figures.
#[derive(Debug, Clone)]
pub struct MadeClip {
    pub clip: ClipLink,
    pub thumbnail: ThumbnailLinks,
    pub reused: bool,
    /// Bytes read from the origin bucket for this clip.
    pub origin_bytes: u64,
    pub clip_bytes: u64,
    pub cut_time: Duration,
    pub thumbnail_time: Duration,
}

impl Trimmer {
    /// How the recordings the camera API lists for `alias` cover the request's range.
    pub(crate) async fn find_recordings(
        &self,
        alias: &str,
        request: &ClipRequest,
        now_ms: i64,
    ) -> Result<Coverage, ProcessingError> {
        let range = (request.start_timestamp_in_ms, request.end_timestamp_in_ms);
        if range.1 > now_ms {
            // Recordings of the future do not exist yet; no need to ask.
            return Ok(schedule::coverage(Vec::new(), range.0, range.1));
        }
        let listed = self
            .camera_api
            .recordings(alias, request.start_timestamp_in_ms, request.end_timestamp_in_ms)
            .await?;
        let recordings = listed
            .iter()
            .map(|l| self.config.origin.resolve(l, &self.config.names))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(listed = recordings.len(), "recordings listed");
        Ok(schedule::coverage(
            recordings,
            request.start_timestamp_in_ms,
            request.end_timestamp_in_ms,
        ))
    }

    /// Makes the clip and thumbnails of a covered request (or finds them made), uploads them
    /// and tells the camera API. `force` picks the mode (benchmarks); otherwise smart cut
    /// wherever the recordings allow it.
    pub async fn make_clip(
        &self,
        request: &ClipRequest,
        alias: &str,
        coverage: &Coverage,
        deadline: Deadline,
        force: Option<Mode>,
    ) -> Result<MadeClip, ProcessingError> {
        let config = &self.config;
        let clip_key = config.clip_key(request);
        let fingerprint = fingerprint(request, coverage);
        let thumbnail_key = config.thumbnail_key(request, "{size}");
        if let Some(made) = self.existing_clip(&clip_key, &fingerprint, &thumbnail_key).await? {
            tracing::info!(clip_key, "this clip was already made; reused");
            self.notify_camera_api(request, alias, &made).await?;
            return Ok(made);
        }
        let work = work_dir(&config.download_dest, "clip-")?;

        // The index of every recording, then only the bytes each part needs.
        let mut replicas = Vec::new();
        let mut indexes = Vec::new();
        for (i, segment) in coverage.segments.iter().enumerate() {
            let path = work.path().join(format!("recording-{i}"));
            let mut replica = Replica::open(&self.s3, &config.origin.bucket, &segment.recording.key, &path).await?;
            let window = Some((ms(segment.from_ms), ms(segment.to_ms)));
            let index = match media::probe_index(&config.ffprobe, &replica.path, deadline, window).await {
                Ok(index) => index,
                Err(err) if !replica.complete => {
                    // An index we cannot read from the ranges: read the whole file instead.
                    replica.fetch_whole(&self.s3, err.reason).await?;
                    media::probe_index(&config.ffprobe, &replica.path, deadline, window).await?
                }
                Err(err) => return Err(with_recording(err, &segment.recording.key)),
            };
            replicas.push(replica);
            indexes.push(index);
        }
        // Which segment each plan is for; the parts borrow that segment's replica and index.
        let mut plans = Vec::new();
        for (i, segment) in coverage.segments.iter().enumerate() {
            let window = (ms(segment.from_ms), ms(segment.to_ms));
            let Some(plan) = cut::plan_segment(&indexes[i], window.0, window.1) else {
                continue; // less than one frame of this recording is in the range
            };
            replicas[i].fetch_range(&self.s3, plan.bytes.0, plan.bytes.1).await?;
            media::probe_params(&config.ffprobe, &replicas[i].path, deadline, window, &mut indexes[i])
                .await
                .map_err(|e| with_recording(e, &segment.recording.key))?;
            plans.push((i, plan));
        }
        if plans.is_empty() {
            return Err(ProcessingError::failed(
                Code::ClipFailed,
                "the recordings have no frame inside the range",
            ));
        }
        let origin_bytes = replicas.iter().map(|r| r.bytes_fetched).sum();
        let parts: Vec<Part> = plans
            .into_iter()
            .map(|(i, plan)| Part {
                file: &replicas[i].path,
                index: &indexes[i],
                plan,
            })
            .collect();
        let mode = force.unwrap_or_else(|| {
            let all: Vec<&media::MediaIndex> = parts.iter().map(|p| p.index).collect();
            match cut::smart_cut_refusal(&all) {
                None => Mode::SmartCut,
                Some(reason) => {
                    tracing::warn!(%reason, "smart cut not possible; re-encoding the whole clip");
                    Mode::ReEncode { reason }
                }
            }
        });

        let started = Instant::now();
        let clip_path = work.path().join("clip.mp4");
        let cutter = Cutter {
            ffmpeg: &config.ffmpeg,
            work_dir: work.path(),
            deadline,
        };
        let cut = cutter.cut(&parts, mode, &clip_path).await?;
        let cut_time = started.elapsed();
        tracing::info!(
            mode = %cut.mode.kind(),
            frames = cut.frames,
            copied = cut.frames_copied,
            ?cut_time,
            origin_bytes,
            "clip cut"
        );

        let started = Instant::now();
        let first = &parts[0];
        let source_width = first.index.video.width;
        let thumbnail_plan = thumbnails::plan(&config.thumbnail_sizes, source_width);
        let thumbnail_files = thumbnails::make(
            &config.ffmpeg,
            deadline,
            first.file,
            first.index,
            first.plan.first_pts,
            &thumbnail_plan.widths,
            work.path(),
        )
        .await?;
        let thumbnail_time = started.elapsed();

        let duration_ms = parts
            .iter()
            .map(|p| (f64::from(p.plan.frames) * p.index.frame_duration() * 1000.0).round() as i64)
            .sum();
        let clip = ClipLink {
            url: config.public_url(&clip_key),
            key: clip_key.clone(),
            mode: cut.mode.kind(),
            mode_reason: match &cut.mode {
                Mode::ReEncode { reason } => Some(reason.clone()),
                Mode::SmartCut => None,
            },
            duration_ms,
            frames: cut.frames,
        };
        let thumbnail = ThumbnailLinks {
            url: config.public_url(&thumbnail_key),
            key: thumbnail_key.clone(),
            sizes: thumbnail_plan.widths.clone(),
            capped: thumbnail_plan.capped.clone(),
        };
        // Thumbnails first, the clip last: a clip object at its key means everything is there.
        for (width, file) in &thumbnail_files {
            let key = config.thumbnail_key(request, &width.to_string());
            let options = UploadOptions {
                content_type: Some("image/png".to_owned()),
                metadata: vec![],
            };
            upload_file(&self.s3, file, &config.destination_bucket, &key, &options).await?;
        }
        let options = UploadOptions {
            content_type: Some("video/mp4".to_owned()),
            metadata: clip_metadata(&fingerprint, &clip, &thumbnail),
        };
        let clip_bytes = upload_file(&self.s3, &clip_path, &config.destination_bucket, &clip_key, &options).await?;
        tracing::info!(clip_key, clip_bytes, "clip and thumbnails stored");
        let made = MadeClip {
            clip,
            thumbnail,
            reused: false,
            origin_bytes,
            clip_bytes,
            cut_time,
            thumbnail_time,
        };
        self.notify_camera_api(request, alias, &made).await?;
        Ok(made)
    }

    async fn notify_camera_api(
        &self,
        request: &ClipRequest,
        alias: &str,
        made: &MadeClip,
    ) -> Result<(), ProcessingError> {
        self.camera_api
            .post_clip(&ClipNotice {
                clip_id: &request.clip_id,
                camera_id: &request.camera_id,
                alias,
                start_timestamp_in_ms: request.start_timestamp_in_ms,
                end_timestamp_in_ms: request.end_timestamp_in_ms,
                clip_url: &made.clip.url,
                thumbnail_url: &made.thumbnail.url,
                thumbnail_sizes: &made.thumbnail.sizes,
            })
            .await
    }

    /// The clip already stored for this very request and these recordings, if any.
    async fn existing_clip(
        &self,
        clip_key: &str,
        fingerprint: &str,
        thumbnail_key: &str,
    ) -> Result<Option<MadeClip>, ProcessingError> {
        let Some(head) = head_object(&self.s3, &self.config.destination_bucket, clip_key).await? else {
            return Ok(None);
        };
        let metadata = head.metadata.unwrap_or_default();
        if metadata.get("request-fingerprint").map(String::as_str) != Some(fingerprint) {
            return Ok(None);
        }
        let Some(stored) = metadata
            .get("result")
            .map(|r| shared::storage::decode_metadata_value(r))
            .and_then(|r| serde_json::from_str::<StoredResult>(&r).ok())
        else {
            return Ok(None);
        };
        Ok(Some(MadeClip {
            clip: ClipLink {
                url: self.config.public_url(clip_key),
                key: clip_key.to_owned(),
                mode: stored.mode,
                mode_reason: stored.mode_reason,
                duration_ms: stored.duration_ms,
                frames: stored.frames,
            },
            thumbnail: ThumbnailLinks {
                url: self.config.public_url(thumbnail_key),
                key: thumbnail_key.to_owned(),
                sizes: stored.sizes,
                capped: stored.capped,
            },
            reused: true,
            origin_bytes: 0,
            clip_bytes: head.content_length.unwrap_or(0).max(0) as u64,
            cut_time: Duration::ZERO,
            thumbnail_time: Duration::ZERO,
        }))
    }
}

/// What a stored clip says about itself (object metadata), so a redelivered request reports
/// the clip as it was made.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredResult {
    mode: ClipMode,
    mode_reason: Option<String>,
    duration_ms: i64,
    frames: u32,
    sizes: Vec<u32>,
    capped: Vec<CappedSize>,
}

fn clip_metadata(fingerprint: &str, clip: &ClipLink, thumbnail: &ThumbnailLinks) -> Vec<(String, String)> {
    let stored = StoredResult {
        mode: clip.mode,
        mode_reason: clip.mode_reason.clone(),
        duration_ms: clip.duration_ms,
        frames: clip.frames,
        sizes: thumbnail.sizes.clone(),
        capped: thumbnail.capped.clone(),
    };
    vec![
        ("request-fingerprint".to_owned(), fingerprint.to_owned()),
        (
            "result".to_owned(),
            shared::storage::metadata_value(&serde_json::to_string(&stored).expect("serializes")),
        ),
    ]
}

fn with_recording(mut err: ProcessingError, key: &str) -> ProcessingError {
    err.reason = format!("recording {key}: {}", err.reason);
    err
}

fn ms(value: i64) -> f64 {
    value as f64 / 1000.0
}
