//! Job templates and output presets: how a CreateJob naming a `JobTemplate`, and outputs naming
//! a `Preset`, become one complete job before it is planned.
//!
//! The rule (the job always wins over what it names):
//! * job-level fields the template carries (`queue`, `accelerationSettings`, `statusUpdateInterval`,
//!   `priority`, `hopDestinations`) apply when the job leaves them out;
//! * `settings` are merged object by object, the job's values over the template's; `inputs` are
//!   merged item by item (a job usually sends only `fileInput`, the template the selectors);
//!   any other list the job sends (`outputGroups`, `outputs`, ...) replaces the template's;
//! * an output's `preset` supplies its `videoDescription`, `audioDescriptions`,
//!   `containerSettings` and `captionDescriptions`, merged under the output's own.

use serde_json::{Map, Value};

/// Why a job's template or preset cannot be used: the API answers 400 naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved(pub String);

/// The job-level fields a template may carry besides its settings.
const TEMPLATE_JOB_FIELDS: &[&str] = &[
    "queue",
    "accelerationSettings",
    "statusUpdateInterval",
    "priority",
    "hopDestinations",
];

/// `over` merged onto `under`: objects key by key, `over` winning; lists replaced.
fn merge(under: &Value, over: &Value) -> Value {
    match (under, over) {
        (Value::Object(under), Value::Object(over)) => {
            let mut merged = under.clone();
            for (key, value) in over {
                let combined = match under.get(key) {
                    Some(existing) => merge(existing, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), combined);
            }
            Value::Object(merged)
        }
        _ => over.clone(),
    }
}

/// The template's settings with the job's over them (`inputs` merged item by item).
fn merge_settings(template: &Value, job: &Value) -> Value {
    let mut merged = merge(template, job);
    if let (Some(Value::Array(template_inputs)), Some(Value::Array(job_inputs))) =
        (template.get("inputs"), job.get("inputs"))
    {
        let inputs: Vec<Value> = job_inputs
            .iter()
            .enumerate()
            .map(|(i, input)| match template_inputs.get(i) {
                Some(base) => merge(base, input),
                None => input.clone(),
            })
            .collect();
        merged["inputs"] = Value::Array(inputs);
    }
    merged
}

/// The CreateJob body with its template applied (`template` is the stored JobTemplate shape,
/// with `settings` and the job-level fields).
pub fn apply_template(job: &Value, template: &Value) -> Value {
    let mut merged = job.clone();
    let fields = merged.as_object_mut().expect("a CreateJob body is an object");
    for key in TEMPLATE_JOB_FIELDS {
        if let (None, Some(value)) = (fields.get(*key), template.get(*key)) {
            fields.insert((*key).to_owned(), value.clone());
        }
    }
    let settings = merge_settings(
        template.get("settings").unwrap_or(&Value::Null),
        job.get("settings").unwrap_or(&Value::Object(Map::new())),
    );
    fields.insert("settings".into(), settings);
    merged
}

/// Replaces every output's `preset` by the preset's settings under the output's own; `lookup`
/// answers a preset's `settings` by name.
pub fn apply_presets(job: &mut Value, lookup: impl Fn(&str) -> Option<Value>) -> Result<(), Unresolved> {
    let Some(groups) = job.pointer_mut("/settings/outputGroups").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (g, group) in groups.iter_mut().enumerate() {
        let Some(outputs) = group.get_mut("outputs").and_then(Value::as_array_mut) else {
            continue;
        };
        for (o, output) in outputs.iter_mut().enumerate() {
            let Some(fields) = output.as_object_mut() else { continue };
            let Some(name) = fields.remove("preset") else { continue };
            let name = name.as_str().unwrap_or_default().to_owned();
            let preset = lookup(&name).ok_or_else(|| {
                Unresolved(format!(
                    "Settings.OutputGroups[{g}].Outputs[{o}].Preset: the preset {name:?} does not exist"
                ))
            })?;
            *output = merge(&preset, output);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "name": "ladder",
            "queue": "arn:aws:mediaconvert:us-east-1:000000000000:queues/Templated",
            "statusUpdateInterval": "SECONDS_10",
            "settings": {
                "timecodeConfig": {"source": "ZEROBASED"},
                "inputs": [{"audioSelectors": {"Audio Selector 1": {"defaultSelection": "DEFAULT"}},
                            "timecodeSource": "ZEROBASED"}],
                "outputGroups": [{"name": "HLS", "outputs": [{"preset": "hd"}, {"nameModifier": "_sd"}]}]
            }
        })
    }

    #[test]
    fn the_job_fills_and_overrides_its_template() {
        let job = json!({
            "role": "r",
            "jobTemplate": "ladder",
            "statusUpdateInterval": "SECONDS_60",
            "settings": {"inputs": [{"fileInput": "s3://b/in.mp4"}]}
        });
        let merged = apply_template(&job, &template());
        assert_eq!(merged["queue"], template()["queue"], "taken from the template");
        assert_eq!(merged["statusUpdateInterval"], "SECONDS_60", "the job's own wins");
        assert_eq!(
            merged["settings"]["inputs"][0],
            json!({"audioSelectors": {"Audio Selector 1": {"defaultSelection": "DEFAULT"}},
                   "timecodeSource": "ZEROBASED", "fileInput": "s3://b/in.mp4"})
        );
        assert_eq!(
            merged["settings"]["outputGroups"],
            template()["settings"]["outputGroups"]
        );

        let replacing = json!({"role": "r", "settings": {"outputGroups": [{"name": "Mine"}]}});
        let merged = apply_template(&replacing, &template());
        assert_eq!(merged["settings"]["outputGroups"], json!([{"name": "Mine"}]));
    }

    #[test]
    fn presets_supply_what_the_output_leaves_out() {
        let mut job = apply_template(&json!({"role": "r", "settings": {}}), &template());
        let hd = json!({"videoDescription": {"width": 1280, "height": 720, "codecSettings": {"codec": "H_264"}},
                        "containerSettings": {"container": "M3U8"}});
        job["settings"]["outputGroups"][0]["outputs"][0]["videoDescription"] = json!({"width": 1920});
        apply_presets(&mut job, |name| (name == "hd").then(|| hd.clone())).unwrap();
        let output = &job["settings"]["outputGroups"][0]["outputs"][0];
        assert_eq!(output.get("preset"), None);
        assert_eq!(output["videoDescription"]["width"], 1920, "the output's own wins");
        assert_eq!(output["videoDescription"]["height"], 720);
        assert_eq!(output["containerSettings"]["container"], "M3U8");

        let mut missing = apply_template(&json!({"role": "r", "settings": {}}), &template());
        let err = apply_presets(&mut missing, |_| None).unwrap_err();
        assert_eq!(
            err.0,
            "Settings.OutputGroups[0].Outputs[0].Preset: the preset \"hd\" does not exist"
        );
    }
}
