//! Job templates kept in the account's MediaConvert: exported from the console (or written for
//! `aws mediaconvert create-job-template --cli-input-json`), registered once, and named by
//! `MEDIACONVERT_TEMPLATE`. The files in `job-templates/mediaconvert/console/` are such exports;
//! `infra/ops/register_job_templates.py` registers them (`make stack` locally, `make deploy` on
//! AWS).
//!
//! Such a template is used unchanged: the submitter reads it once with `GetJobTemplate` (the
//! SDK parses every setting, so nothing is lost on the way) and creates each job with
//! `JobTemplate` set to its name, the way AWS's VOD solution does. The job carries only what is
//! per object: the uploaded file as the input (the input's other settings copied from the
//! template's), and every output group copied whole with its destination moved under the
//! configured output bucket and prefix.

use aws_sdk_mediaconvert::types as mc;

use crate::template::Filling;

/// The folder an output group without a destination of its own writes to, below the job's
/// destination (files of a FILE group sit directly in it).
fn default_folder(settings: &mc::OutputGroupSettings) -> &'static str {
    match settings.r#type.as_ref().map(mc::OutputGroupType::as_str) {
        Some("HLS_GROUP_SETTINGS") => "hls/",
        Some("DASH_ISO_GROUP_SETTINGS") => "dash/",
        Some("CMAF_GROUP_SETTINGS") => "cmaf/",
        Some("MS_SMOOTH_GROUP_SETTINGS") => "mss/",
        _ => "",
    }
}

/// The destination a template's output group gets for one object: what the template writes
/// below its bucket (`s3://any-bucket/hls/` keeps `hls/`), under `job_destination`
/// (`s3://output-bucket/<prefix><source folder>/`). A template without a destination, or with
/// only a bucket, writes to the group type's folder.
pub fn destination(template_destination: Option<&str>, folder: &str, job_destination: &str) -> String {
    let below = template_destination
        .and_then(|d| d.strip_prefix("s3://"))
        .and_then(|d| d.split_once('/'))
        .map(|(_bucket, below)| below)
        .filter(|below| !below.is_empty())
        .unwrap_or(folder);
    format!("{job_destination}{below}")
}

/// The `destination` field of whichever group settings the group carries.
fn destination_field(settings: &mut mc::OutputGroupSettings) -> Option<&mut Option<String>> {
    if let Some(s) = settings.file_group_settings.as_mut() {
        return Some(&mut s.destination);
    }
    if let Some(s) = settings.hls_group_settings.as_mut() {
        return Some(&mut s.destination);
    }
    if let Some(s) = settings.dash_iso_group_settings.as_mut() {
        return Some(&mut s.destination);
    }
    if let Some(s) = settings.cmaf_group_settings.as_mut() {
        return Some(&mut s.destination);
    }
    settings.ms_smooth_group_settings.as_mut().map(|s| &mut s.destination)
}

/// Why a registered template cannot be filled for an upload; the job is answered as refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub String);

/// The job settings for one object from a template read with `GetJobTemplate`: the uploaded
/// object as the only input (with the template's input settings), and the template's output
/// groups with their destinations under the configured output. Pure.
pub fn job_settings(template: &mc::JobTemplate, filling: &Filling<'_>) -> Result<mc::JobSettings, Unusable> {
    let name = template.name().unwrap_or("(unnamed)");
    let settings = template
        .settings()
        .ok_or_else(|| Unusable(format!("job template {name:?} has no settings")))?;
    let input = match settings.inputs() {
        [] => mc::Input::builder().file_input(&filling.file_input).build(),
        [only] => input_from(only, &filling.file_input),
        more => {
            return Err(Unusable(format!(
                "job template {name:?} has {} inputs; an upload fills exactly one",
                more.len()
            )))
        }
    };
    if settings.output_groups().is_empty() {
        return Err(Unusable(format!("job template {name:?} has no output groups")));
    }
    let mut groups = settings.output_groups().to_vec();
    for group in &mut groups {
        let Some(group_settings) = group.output_group_settings.as_mut() else {
            return Err(Unusable(format!(
                "job template {name:?}: output group {:?} has no OutputGroupSettings",
                group.name().unwrap_or_default()
            )));
        };
        let folder = default_folder(group_settings);
        match destination_field(group_settings) {
            Some(field) => *field = Some(destination(field.as_deref(), folder, &filling.destination)),
            None => {
                return Err(Unusable(format!(
                    "job template {name:?}: output group {:?} has no group settings with a destination",
                    group.name().unwrap_or_default()
                )))
            }
        }
    }
    Ok(mc::JobSettings::builder()
        .inputs(input)
        .set_output_groups(Some(groups))
        .build())
}

/// The job's input: the uploaded object, with every setting the template's input carries.
/// (`InputTemplate`'s fields are a subset of `Input`'s, of the same types.)
fn input_from(template: &mc::InputTemplate, file_input: &str) -> mc::Input {
    let t = template.clone();
    mc::Input::builder()
        .file_input(file_input)
        .set_advanced_input_filter(t.advanced_input_filter)
        .set_advanced_input_filter_settings(t.advanced_input_filter_settings)
        .set_audio_selector_groups(t.audio_selector_groups)
        .set_audio_selectors(t.audio_selectors)
        .set_caption_selectors(t.caption_selectors)
        .set_crop(t.crop)
        .set_deblock_filter(t.deblock_filter)
        .set_denoise_filter(t.denoise_filter)
        .set_dolby_vision_metadata_xml(t.dolby_vision_metadata_xml)
        .set_dynamic_audio_selectors(t.dynamic_audio_selectors)
        .set_filter_enable(t.filter_enable)
        .set_filter_strength(t.filter_strength)
        .set_image_inserter(t.image_inserter)
        .set_input_clippings(t.input_clippings)
        .set_input_scan_type(t.input_scan_type)
        .set_multi_view_settings(t.multi_view_settings)
        .set_position(t.position)
        .set_program_number(t.program_number)
        .set_psi_control(t.psi_control)
        .set_timecode_source(t.timecode_source)
        .set_timecode_start(t.timecode_start)
        .set_video_overlays(t.video_overlays)
        .set_video_selector(t.video_selector)
        .build()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// An HLS group as a console template has it: its own bucket, `hls/` below, 6 s segments.
    pub(crate) fn hls_group_settings() -> mc::OutputGroupSettings {
        mc::OutputGroupSettings::builder()
            .r#type(mc::OutputGroupType::HlsGroupSettings)
            .hls_group_settings(
                mc::HlsGroupSettings::builder()
                    .destination("s3://their-bucket/hls/")
                    .segment_length(6)
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_destination_keeps_what_the_template_writes_below_its_bucket() {
        let job = "s3://out/mediaconvert/uploads/";
        assert_eq!(
            destination(Some("s3://their-bucket/hls/ladder/"), "hls/", job),
            "s3://out/mediaconvert/uploads/hls/ladder/"
        );
        assert_eq!(
            destination(Some("s3://their-bucket/"), "hls/", job),
            "s3://out/mediaconvert/uploads/hls/"
        );
        assert_eq!(
            destination(Some("s3://their-bucket"), "dash/", job),
            "s3://out/mediaconvert/uploads/dash/"
        );
        assert_eq!(destination(None, "", job), job);
    }

    fn filling() -> Filling<'static> {
        Filling {
            file_input: "s3://src/mediaconvert-uploads/a b/cat.mp4".into(),
            destination: "s3://out/mediaconvert/mediaconvert-uploads/a b/".into(),
            queue_arn: "queue",
            role_arn: "role",
            user_metadata: BTreeMap::new(),
        }
    }

    fn group(settings: mc::OutputGroupSettings) -> mc::OutputGroup {
        mc::OutputGroup::builder()
            .name("g")
            .output_group_settings(settings)
            .outputs(mc::Output::builder().name_modifier("_x").preset("their-preset").build())
            .build()
    }

    fn template(inputs: Vec<mc::InputTemplate>, groups: Vec<mc::OutputGroup>) -> mc::JobTemplate {
        mc::JobTemplate::builder()
            .name("console-ladder")
            .settings(
                mc::JobTemplateSettings::builder()
                    .set_inputs(Some(inputs))
                    .set_output_groups(Some(groups))
                    .build(),
            )
            .build()
    }

    #[test]
    fn the_job_has_the_upload_as_input_with_the_templates_input_settings_and_every_group_moved() {
        let selector = mc::AudioSelector::builder()
            .default_selection(mc::AudioDefaultSelection::Default)
            .build();
        let input = mc::InputTemplate::builder()
            .audio_selectors("Audio Selector 1", selector.clone())
            .timecode_source(mc::InputTimecodeSource::Zerobased)
            .build();
        let hls = hls_group_settings();
        let dash = mc::OutputGroupSettings::builder()
            .r#type(mc::OutputGroupType::DashIsoGroupSettings)
            .dash_iso_group_settings(mc::DashIsoGroupSettings::builder().segment_length(4).build())
            .build();
        let template = template(vec![input], vec![group(hls), group(dash)]);

        let job = job_settings(&template, &filling()).unwrap();

        let [input] = job.inputs() else { panic!("one input") };
        assert_eq!(input.file_input(), Some("s3://src/mediaconvert-uploads/a b/cat.mp4"));
        assert_eq!(
            input.audio_selectors().and_then(|s| s.get("Audio Selector 1")),
            Some(&selector)
        );
        assert_eq!(input.timecode_source(), Some(&mc::InputTimecodeSource::Zerobased));
        let groups = job.output_groups();
        let hls = groups[0]
            .output_group_settings()
            .and_then(|s| s.hls_group_settings())
            .unwrap();
        assert_eq!(
            hls.destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/a b/hls/")
        );
        assert_eq!(hls.segment_length(), Some(6), "the rest of the group is the template's");
        let dash = groups[1]
            .output_group_settings()
            .and_then(|s| s.dash_iso_group_settings())
            .unwrap();
        assert_eq!(
            dash.destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/a b/dash/")
        );
        assert_eq!(
            groups[1].outputs()[0].preset(),
            Some("their-preset"),
            "outputs keep their presets"
        );
    }

    #[test]
    fn a_template_without_inputs_gets_the_upload_as_its_one_input() {
        let file = mc::OutputGroupSettings::builder()
            .r#type(mc::OutputGroupType::FileGroupSettings)
            .file_group_settings(mc::FileGroupSettings::builder().build())
            .build();
        let job = job_settings(&template(vec![], vec![group(file)]), &filling()).unwrap();
        assert_eq!(
            job.inputs()[0].file_input(),
            Some("s3://src/mediaconvert-uploads/a b/cat.mp4")
        );
        let file = job.output_groups()[0]
            .output_group_settings()
            .and_then(|s| s.file_group_settings())
            .unwrap();
        assert_eq!(
            file.destination(),
            Some("s3://out/mediaconvert/mediaconvert-uploads/a b/")
        );
    }

    #[test]
    fn templates_an_upload_cannot_fill_are_unusable_by_name() {
        let two = vec![
            mc::InputTemplate::builder().build(),
            mc::InputTemplate::builder().build(),
        ];
        let err = job_settings(&template(two, vec![]), &filling()).unwrap_err();
        assert!(err.0.contains("\"console-ladder\" has 2 inputs"), "{err:?}");
        let err = job_settings(&template(vec![], vec![]), &filling()).unwrap_err();
        assert!(err.0.contains("no output groups"), "{err:?}");
    }
}
