//! Job templates and presets through the real, unmodified `aws-sdk-mediaconvert` client against
//! the local MediaConvert served in-process: CreateJobTemplate, GetJobTemplate,
//! ListJobTemplates, CreatePreset, GetPreset, and CreateJob by template and presets.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use aws_sdk_mediaconvert::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_mediaconvert::types::{
    AacSettings, AccelerationMode, AccelerationSettings, AudioCodec, AudioCodecSettings, AudioDefaultSelection,
    AudioDescription, AudioSelector, ContainerSettings, ContainerType, FileGroupSettings, H264RateControlMode,
    H264Settings, Input, JobSettings, JobStatus, JobTemplateListBy, JobTemplateSettings, Output, OutputGroup,
    OutputGroupSettings, OutputGroupType, PresetSettings, VideoCodec, VideoCodecSettings, VideoDescription,
};
use aws_sdk_mediaconvert::Client;
use local_services::mediaconvert::LocalMediaConvert;

async fn start_service() -> Client {
    // The jobs this test creates start running; their S3 and EventBridge calls must reach
    // nobody (never a local stack that happens to be up).
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    for specific in [
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        "AWS_ENDPOINT_URL_SNS",
    ] {
        std::env::remove_var(specific);
    }
    // And were an event delivered, no stack's rule listens to this source.
    std::env::set_var("MEDIACONVERT_EVENT_SOURCE", "local-services.templates-api-test");
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let service = LocalMediaConvert::new(port);
    tokio::spawn(local_services::serve(
        "mediaconvert",
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        move |r| service.handle(r),
    ));
    for _ in 0..50 {
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let config = aws_sdk_mediaconvert::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    Client::from_conf(config)
}

fn hd_preset() -> PresetSettings {
    PresetSettings::builder()
        .container_settings(ContainerSettings::builder().container(ContainerType::Mp4).build())
        .video_description(
            VideoDescription::builder()
                .width(1280)
                .height(720)
                .codec_settings(
                    VideoCodecSettings::builder()
                        .codec(VideoCodec::H264)
                        .h264_settings(
                            H264Settings::builder()
                                .rate_control_mode(H264RateControlMode::Cbr)
                                .bitrate(3_000_000)
                                .gop_size(2.0)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .audio_descriptions(
            AudioDescription::builder()
                .audio_source_name("Audio Selector 1")
                .codec_settings(
                    AudioCodecSettings::builder()
                        .codec(AudioCodec::Aac)
                        .aac_settings(AacSettings::builder().bitrate(96_000).sample_rate(48_000).build())
                        .build(),
                )
                .build(),
        )
        .build()
}

fn template_settings() -> JobTemplateSettings {
    JobTemplateSettings::builder()
        .inputs(
            aws_sdk_mediaconvert::types::InputTemplate::builder()
                .audio_selectors(
                    "Audio Selector 1",
                    AudioSelector::builder()
                        .default_selection(AudioDefaultSelection::Default)
                        .build(),
                )
                .build(),
        )
        .output_groups(
            OutputGroup::builder()
                .name("File Group")
                .output_group_settings(
                    OutputGroupSettings::builder()
                        .r#type(OutputGroupType::FileGroupSettings)
                        .file_group_settings(FileGroupSettings::builder().destination("s3://out/templated/").build())
                        .build(),
                )
                .outputs(Output::builder().preset("hd-local").name_modifier("_hd").build())
                .build(),
        )
        .build()
}

#[tokio::test]
async fn templates_and_presets_through_the_sdk() {
    let client = start_service().await;

    let preset = client
        .create_preset()
        .name("hd-local")
        .category("conformance")
        .settings(hd_preset())
        .send()
        .await
        .expect("CreatePreset");
    let preset = preset.preset().unwrap();
    assert_eq!(preset.name(), Some("hd-local"));
    assert_eq!(
        preset.arn(),
        Some("arn:aws:mediaconvert:us-east-1:000000000000:presets/hd-local")
    );
    let got = client.get_preset().name("hd-local").send().await.expect("GetPreset");
    assert_eq!(
        got.preset()
            .unwrap()
            .settings()
            .unwrap()
            .video_description()
            .unwrap()
            .width(),
        Some(1280)
    );

    for name in ["ladder-b", "ladder-a"] {
        client
            .create_job_template()
            .name(name)
            .category("conformance")
            .queue("arn:aws:mediaconvert:us-east-1:000000000000:queues/Templated")
            .acceleration_settings(
                AccelerationSettings::builder()
                    .mode(AccelerationMode::Preferred)
                    .build(),
            )
            .settings(template_settings())
            .send()
            .await
            .expect("CreateJobTemplate");
    }
    let duplicate = client
        .create_job_template()
        .name("ladder-a")
        .settings(template_settings())
        .send()
        .await
        .expect_err("a second template of one name");
    assert!(
        duplicate.as_service_error().is_some_and(|e| e.is_conflict_exception()),
        "{duplicate:?}"
    );
    let got = client
        .get_job_template()
        .name("ladder-a")
        .send()
        .await
        .expect("GetJobTemplate");
    let template = got.job_template().unwrap();
    assert_eq!(template.name(), Some("ladder-a"));
    assert_eq!(template.settings().unwrap().output_groups().len(), 1);
    let missing = client
        .get_job_template()
        .name("nope")
        .send()
        .await
        .expect_err("an unknown template");
    assert!(missing.as_service_error().is_some_and(|e| e.is_not_found_exception()));

    let listed = client
        .list_job_templates()
        .list_by(JobTemplateListBy::Name)
        .category("conformance")
        .send()
        .await
        .expect("ListJobTemplates");
    let names: Vec<_> = listed.job_templates().iter().filter_map(|t| t.name()).collect();
    assert_eq!(names, ["ladder-a", "ladder-b"]);

    // As AWS's VOD solution submits: the template, and only the input in the settings.
    let created = client
        .create_job()
        .role("arn:aws:iam::000000000000:role/mc")
        .job_template("ladder-a")
        .settings(
            JobSettings::builder()
                .inputs(Input::builder().file_input("s3://src/in/clip.mp4").build())
                .build(),
        )
        .send()
        .await
        .expect("CreateJob by template");
    let job = created.job().unwrap();
    assert_eq!(job.job_template(), Some("ladder-a"));
    assert_eq!(
        job.queue(),
        Some("arn:aws:mediaconvert:us-east-1:000000000000:queues/Templated")
    );
    let settings = job.settings().unwrap();
    let input = &settings.inputs()[0];
    assert_eq!(input.file_input(), Some("s3://src/in/clip.mp4"));
    assert!(input.audio_selectors().unwrap().contains_key("Audio Selector 1"));
    let output = &settings.output_groups()[0].outputs()[0];
    assert_eq!(output.preset(), None, "the preset is merged in");
    assert_eq!(output.name_modifier(), Some("_hd"));
    let video = output.video_description().unwrap();
    assert_eq!(video.width(), Some(1280));
    let h264 = video.codec_settings().unwrap().h264_settings().unwrap();
    assert_eq!(h264.bitrate(), Some(3_000_000));
    assert_eq!(h264.gop_size(), Some(2.0));

    // The job runs (and fails: its input is on no reachable S3); planned first, it names the
    // setting it accepted without local effect, in the shapes the SDK reads.
    let id = job.id().unwrap().to_owned();
    let mut finished = None;
    for _ in 0..300 {
        let got = client.get_job().id(&id).send().await.expect("GetJob");
        let job = got.job().unwrap().clone();
        if job.status() == Some(&JobStatus::Error) {
            finished = Some(job);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = finished.expect("the job ends in ERROR within 30 s");
    assert_eq!(finished.error_code(), Some(1010), "{:?}", finished.error_message());
    assert_eq!(
        finished.messages().unwrap().warning(),
        [
            "Accepted without local effect: Settings.OutputGroups[0].Name = File Group",
            "Accepted without local effect: AccelerationSettings.Mode = PREFERRED"
        ]
    );
    let warning = &finished.warnings()[0];
    assert_eq!((warning.code(), warning.count()), (Some(990_001), Some(2)));

    let refused = client
        .create_job()
        .role("r")
        .job_template("no-such-template")
        .settings(JobSettings::builder().build())
        .send()
        .await
        .expect_err("an unknown template");
    assert!(
        refused.as_service_error().is_some_and(|e| e.is_bad_request_exception()),
        "{refused:?}"
    );
}
