//! Thumbnails of a clip's first frame at the configured widths (`THUMBNAIL_SIZES`), PNG,
//! never wider than the recording: a width above it is capped to the recording's own width
//! and reported as capped. All sizes come from one decode of one frame, reached with input
//! seeking (the cost does not grow with the frame's distance into the recording).

use std::path::{Path, PathBuf};

pub use shared::contracts::clip::CappedSize;
use shared::ffmpeg::{ffmpeg_base_args, Deadline, Supervised};
use shared::{Code, ProcessingError};

use crate::cut::recording_input_options;
use crate::media::MediaIndex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailPlan {
    /// The widths made, ascending, without repeats.
    pub widths: Vec<u32>,
    pub capped: Vec<CappedSize>,
}

pub fn plan(requested: &[u32], source_width: u32) -> ThumbnailPlan {
    let mut widths = Vec::new();
    let mut capped = Vec::new();
    for &want in requested {
        let width = want.min(source_width);
        if width < want {
            capped.push(CappedSize { requested: want, width });
        }
        if width > 0 {
            widths.push(width);
        }
    }
    widths.sort_unstable();
    widths.dedup();
    ThumbnailPlan { widths, capped }
}

/// Makes one PNG per width from the frame shown at `pts` in `file`; returns the files.
pub async fn make(
    ffmpeg: &Path,
    deadline: Deadline,
    file: &Path,
    index: &MediaIndex,
    pts: f64,
    widths: &[u32],
    out_dir: &Path,
) -> Result<Vec<(u32, PathBuf)>, ProcessingError> {
    let mut args = ffmpeg_base_args();
    args.extend(recording_input_options(index, pts, file));
    args.push("-i".into());
    args.push(file.into());
    let labels: String = (0..widths.len()).map(|i| format!("[s{i}]")).collect();
    let mut filter = format!("[0:v:0]split={}{labels}", widths.len());
    for (i, width) in widths.iter().enumerate() {
        filter.push_str(&format!(";[s{i}]scale={width}:-2:flags=lanczos[t{i}]"));
    }
    args.push("-filter_complex".into());
    args.push(filter.into());
    let mut outputs = Vec::new();
    for (i, width) in widths.iter().enumerate() {
        let path = out_dir.join(format!("thumb-{width}.png"));
        args.extend(["-map".into(), format!("[t{i}]").into(), "-frames:v".into(), "1".into()]);
        args.push(path.clone().into());
        outputs.push((*width, path));
    }
    Supervised::new(ffmpeg, deadline)
        .args(args)
        .run()
        .await
        .map_err(|e| e.into_processing_error(Code::ClipFailed))?;
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_capped_at_the_source_and_reported() {
        let p = plan(&[300, 640, 1500, 3000], 1920);
        assert_eq!(p.widths, [300, 640, 1500, 1920]);
        assert_eq!(
            p.capped,
            [CappedSize {
                requested: 3000,
                width: 1920
            }]
        );
        let small = plan(&[300, 640, 1500, 3000], 640);
        assert_eq!(small.widths, [300, 640], "capped sizes that meet collapse into one");
        assert_eq!(small.capped.len(), 2);
        assert_eq!(plan(&[300], 1920).capped, []);
    }
}
