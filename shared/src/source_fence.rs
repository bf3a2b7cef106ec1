//! Reading an uploaded source without letting its container reach out.
//!
//! An upload is hostile input to ffmpeg and ffprobe: an HLS playlist or a concat list saved as
//! `talk.mp4` would make them open whatever URLs or local files it names (request forgery from
//! inside the function, or a local file such as the function's environment copied into a
//! rendition). So every read of a source names the demuxers allowed (`-format_whitelist`: real
//! containers that carry their media inline; no playlists, no concat lists, no image sequences)
//! and the protocols allowed (`-protocol_whitelist`): only the one the source is read with, a
//! local file or the presigned S3 URL's scheme. Inputs we wrote ourselves (parts, joined audio,
//! our own outputs) are not sources and are read as they are.

use std::ffi::{OsStr, OsString};

/// Demuxers a source may be read with: containers that carry their media inline.
pub const SOURCE_FORMATS: &str =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,mxf,ivf,h264,hevc,m4v";

/// The protocols ffmpeg needs to read `input`: a presigned `https://` URL goes over TLS and
/// TCP, an `http://` one (the local stack's S3) over TCP; anything else is a local file.
pub fn source_protocols(input: &OsStr) -> &'static str {
    let input = input.to_string_lossy();
    let scheme = input.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("https") => "https,tls,tcp",
        Some("http") => "http,tcp",
        _ => "file",
    }
}

/// The input options that fence `input` in; they go before its `-i` (or, for ffprobe, before
/// the file).
pub fn source_fence(input: &OsStr) -> Vec<OsString> {
    [
        "-format_whitelist",
        SOURCE_FORMATS,
        "-protocol_whitelist",
        source_protocols(input),
    ]
    .map(OsString::from)
    .to_vec()
}

/// [`source_fence`] for a concat list of ours that names local sources (a piece of a recording to
/// copy from its `inpoint` to its `outpoint`): the list itself is read with the `concat`
/// demuxer, and ffmpeg passes both whitelists on to the files the list opens.
pub fn concat_of_sources_fence() -> Vec<OsString> {
    [
        "-format_whitelist".into(),
        format!("concat,{SOURCE_FORMATS}"),
        "-protocol_whitelist".into(),
        "file".into(),
    ]
    .map(OsString::from)
    .to_vec()
}

/// Whether `args` fence the input that follows their `-i` `input` (for this crate's tests: every
/// source read must be fenced). Not compiled into the functions.
#[cfg(test)]
pub(crate) fn is_fenced(args: &[OsString], input: &OsStr) -> bool {
    let Some(at) = args.iter().position(|arg| arg == input) else {
        return false;
    };
    let before = &args[..at];
    let has = |option: &str, value: &str| before.windows(2).any(|w| w[0] == option && w[1] == value);
    has("-format_whitelist", SOURCE_FORMATS) && has("-protocol_whitelist", source_protocols(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_may_use_only_the_protocol_it_is_read_with() {
        assert_eq!(source_protocols(OsStr::new("/tmp/w/source")), "file");
        assert_eq!(
            source_protocols(OsStr::new("https://b.s3.amazonaws.com/k?X-Amz-Signature=1")),
            "https,tls,tcp"
        );
        assert_eq!(source_protocols(OsStr::new("HTTP://127.0.0.1:4566/b/k")), "http,tcp");
        // A local name that merely contains "://" further on is still a file.
        assert_eq!(source_protocols(OsStr::new("/tmp/a://b")), "file");
    }

    #[test]
    fn no_playlist_list_or_image_sequence_demuxer_is_allowed() {
        let allowed: Vec<&str> = SOURCE_FORMATS.split(',').collect();
        for refused in [
            "hls",
            "applehttp",
            "concat",
            "image2",
            "dash",
            "ffconcat",
            "data",
            "lavfi",
            "tty",
        ] {
            assert!(!allowed.contains(&refused), "{refused}");
        }
    }

    #[test]
    fn fenced_args_are_recognised_and_bare_ones_are_not() {
        let input = OsString::from("/w/source");
        let mut args = source_fence(&input);
        args.extend(["-i".into(), input.clone()]);
        assert!(is_fenced(&args, &input));
        assert!(!is_fenced(&["-i".into(), input.clone()], &input));
        // The protocol allowed must be the input's own.
        let url = OsString::from("https://example/k");
        let mut wrong = source_fence(&input);
        wrong.extend(["-i".into(), url.clone()]);
        assert!(!is_fenced(&wrong, &url));
    }
}
