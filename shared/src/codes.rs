//! Every stable code the suite names an outcome with: in [`crate::ProcessingError`], in a
//! result's `reason.code`, in a GIF task's `error.code`, in the GIF API's error answers and in
//! the `rejection_code` of a message parked in a dead-letter queue. Tests, alarms and readers
//! match on these spellings, so a spelling never changes once published.
//!
//! Whether retrying helps is not part of the code (the same code can be either, e.g.
//! `SOURCE_HTTP_STATUS` for a 503 and for a 404): that is [`crate::ErrorKind`].

use crate::wire::wire_enum;

wire_enum! {
    /// A stable, machine-readable outcome code; on the wire in SCREAMING_SNAKE_CASE.
    pub enum Code {
        // Events and messages the functions receive.
        /// An S3 or EventBridge event that names no object or job of ours (unparseable record,
        /// no `Records`, a key that is not UTF-8, a MediaConvert event of another pipeline).
        MalformedEvent = "MALFORMED_EVENT",
        /// An SQS message that is not JSON or does not match its contract (parked in the DLQ).
        MalformedMessage = "MALFORMED_MESSAGE",
        /// A GIF job whose `version` this converter does not read.
        UnsupportedVersion = "UNSUPPORTED_VERSION",
        /// An object key (or the output key made from it) longer than S3's 1024 bytes.
        KeyTooLong = "KEY_TOO_LONG",

        // The source object.
        /// Not a video: an extension not accepted, no video stream, a still image, or a GIF
        /// source ffprobe cannot read.
        NotVideo = "NOT_VIDEO",
        /// A video ffprobe cannot read, or whose video stream has no size.
        CorruptInput = "CORRUPT_INPUT",
        /// The source object is empty (0 bytes).
        EmptyObject = "EMPTY_OBJECT",
        /// The source object does not exist (any more).
        SourceMissing = "SOURCE_MISSING",
        /// A source longer than one segmented rendition can carry: its plan and its parts'
        /// answers would be over Step Functions' 256 KiB of state (longer segments make fewer).
        SourceTooLong = "SOURCE_TOO_LONG",

        // Running ffmpeg/ffprobe, local disk and AWS.
        /// ffmpeg failed on a rendition, or its output is not a readable video.
        TranscodeFailed = "TRANSCODE_FAILED",
        /// ffprobe did not finish for a reason other than refusing the file.
        ProbeFailed = "PROBE_FAILED",
        /// ffmpeg or ffprobe was still running at the invocation's deadline.
        Timeout = "TIMEOUT",
        /// A segmented rendition's execution ended without its tasks naming why: a task that
        /// kept crashing or timing out past its retries, or an execution stopped or timed out.
        SegmentedRenditionFailed = "SEGMENTED_RENDITION_FAILED",
        /// ffmpeg or ffprobe could not be started, or its output could not be read.
        ToolUnavailable = "TOOL_UNAVAILABLE",
        /// Reading or writing the function's local disk failed.
        LocalIo = "LOCAL_IO",
        /// An S3 object's body stopped arriving part-way through a download.
        S3ReadFailed = "S3_READ_FAILED",
        /// A message could not be written as JSON for publishing.
        SerializeFailed = "SERIALIZE_FAILED",
        /// An AWS request timed out.
        AwsTimeout = "AWS_TIMEOUT",
        /// An AWS service could not be reached (connection, DNS, TLS).
        AwsUnreachable = "AWS_UNREACHABLE",
        /// An AWS service refused a request with an error no caller maps to a permanent outcome.
        AwsServiceError = "AWS_SERVICE_ERROR",
        /// Any other AWS SDK failure, or an answer missing what it must carry.
        AwsError = "AWS_ERROR",

        // MediaConvert.
        /// MediaConvert refused to create the job (`BadRequestException`): the job is wrong.
        JobRefused = "JOB_REFUSED",
        /// MediaConvert ended a job in `ERROR` (its own numeric code is in the result too).
        MediaconvertError = "MEDIACONVERT_ERROR",
        /// A MediaConvert job was canceled before it finished.
        MediaconvertCanceled = "MEDIACONVERT_CANCELED",

        // The GIF task API's requests.
        /// The request is not POST.
        MethodNotAllowed = "METHOD_NOT_ALLOWED",
        /// The request body is larger than the API reads.
        BodyTooLarge = "BODY_TOO_LARGE",
        /// The request body is not a JSON object.
        BadJson = "BAD_JSON",
        /// The request names no `action`.
        MissingAction = "MISSING_ACTION",
        /// The request's `action` is neither `convert` nor `get_task_status`.
        UnknownAction = "UNKNOWN_ACTION",
        /// A `convert` request without a `src_url`.
        MissingSrcUrl = "MISSING_SRC_URL",
        /// A `get_task_status` request without a `task_id`.
        MissingTaskId = "MISSING_TASK_ID",
        /// A `task_id` that is not a task id (a lowercase UUID).
        InvalidTaskId = "INVALID_TASK_ID",
        /// No such GIF task: unknown, expired, or gone before its job ran.
        TaskNotFound = "TASK_NOT_FOUND",
        /// A GIF parameter out of bounds or of the wrong type, or a start past the source's end.
        InvalidParameter = "INVALID_PARAMETER",
        /// The API's answer when a backing service failed or a task row is unreadable (503).
        ServiceUnavailable = "SERVICE_UNAVAILABLE",
        /// The GIF link could not be presigned.
        PresignFailed = "PRESIGN_FAILED",

        // GIF tasks.
        /// A failed GIF task whose row names no code of its own.
        Failed = "FAILED",
        /// ffmpeg could not make the GIF, or the GIF has no frames.
        GifFailed = "GIF_FAILED",
        /// ffprobe cannot read the GIF that ffmpeg made.
        GifUnreadable = "GIF_UNREADABLE",

        // GIF sources (`src_url`) and fetching them.
        /// The source URL is not a URL this API accepts (not a string, unparseable, too long,
        /// credentials in it, no host, no key).
        SourceUrlInvalid = "SOURCE_URL_INVALID",
        /// A scheme other than `http`, `https` or `s3`, or a redirect to `s3://`.
        SourceSchemeRefused = "SOURCE_SCHEME_REFUSED",
        /// An `s3://` source outside the input bucket.
        SourceBucketRefused = "SOURCE_BUCKET_REFUSED",
        /// A source address that is private, loopback (unless allowed), link-local or metadata.
        SourceAddressForbidden = "SOURCE_ADDRESS_FORBIDDEN",
        /// The source's host name does not resolve.
        SourceHostUnknown = "SOURCE_HOST_UNKNOWN",
        /// The source's host could not be connected to (or resolving it timed out).
        SourceUnreachable = "SOURCE_UNREACHABLE",
        /// The source did not answer, or stopped sending, in time.
        SourceTimeout = "SOURCE_TIMEOUT",
        /// The source answered with an HTTP status other than success (or a redirect without a
        /// usable `Location`).
        SourceHttpStatus = "SOURCE_HTTP_STATUS",
        /// Reading the source's body failed part-way through.
        SourceFetchFailed = "SOURCE_FETCH_FAILED",
        /// The source is larger than sources may be.
        SourceTooLarge = "SOURCE_TOO_LARGE",
        /// The source sent an empty body.
        EmptySource = "EMPTY_SOURCE",
        /// The source redirected more often than followed.
        TooManyRedirects = "TOO_MANY_REDIRECTS",

        // Clips. The first five are also the names of clip statuses (`ClipStatus` takes its
        // spellings from here); the rest go with `CLIP_FAILED` or `CLIP_INVALID`, as said.
        /// A clip request that is malformed or impossible.
        ClipInvalid = "CLIP_INVALID",
        /// A clip could not be made (ffmpeg failed, or no frame of the range).
        ClipFailed = "CLIP_FAILED",
        /// The recordings do not cover the range yet; the request is tried again later.
        ClipPending = "CLIP_PENDING",
        /// The recordings still do not cover the range after the retry limit.
        ClipNotAvailable = "CLIP_NOT_AVAILABLE",
        /// The range starts further back than recordings are kept.
        ClipOutOfRange = "CLIP_OUT_OF_RANGE",
        /// With `CLIP_FAILED`: a clip handed on to fresh invocations `MAX_DEADLINE_REQUEUES`
        /// times, and still not finished.
        ClipTooSlow = "CLIP_TOO_SLOW",
        /// With `CLIP_INVALID`: the camera API knows no such camera.
        CameraNotFound = "CAMERA_NOT_FOUND",
        /// With `CLIP_FAILED`: the camera API answered with something the trimmer cannot use.
        CameraApiRejected = "CAMERA_API_REJECTED",
        /// Retried, never published: the camera API could not be reached, timed out, or
        /// answered 5xx or 429.
        CameraApiUnavailable = "CAMERA_API_UNAVAILABLE",
        /// With `CLIP_FAILED`: the camera API listed a recording outside `RECORDINGS_URL`, or
        /// one whose start cannot be told.
        RecordingUnusable = "RECORDING_UNUSABLE",
        /// With `CLIP_FAILED`: a recording the camera API lists is not in the origin bucket.
        RecordingMissing = "RECORDING_MISSING",
        /// With `CLIP_FAILED`: a recording is empty or not an MP4 ffprobe can index.
        RecordingCorrupt = "RECORDING_CORRUPT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{assert_wire_enum, Case};

    #[test]
    fn every_code_round_trips_through_its_spelling() {
        assert_wire_enum(Code::ALL, Code::as_str, Case::ScreamingSnake);
    }

    /// The spellings are published: `shared/fixtures/codes.json` is the list a change to a code
    /// shows up in, in review.
    #[test]
    fn the_published_codes_are_the_fixture() {
        let published: Vec<Code> = serde_json::from_value(crate::contracts::fixture("codes.json")).unwrap();
        assert_eq!(published, Code::ALL);
    }
}
