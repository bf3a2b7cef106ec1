//! Reading a job's JSON: each object's keys are consumed by the planner as it honours them;
//! what is left is classified by the [`table`] (accepted and listed, or refused by name).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::table::{self, Class, Values};

/// A job refused because of one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The setting, in the console's spelling with its path.
    pub setting: String,
    pub detail: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported setting {}: {}", self.setting, self.detail)
    }
}

pub(super) type Result<T> = std::result::Result<T, Unsupported>;

/// `h265Settings` → `H265Settings`: the wire name with its first letter raised.
pub(super) fn console_name(wire: &str) -> String {
    let mut chars = wire.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What reading a job found besides the plan, shared by all its nodes.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Settings accepted without local effect, in the console's spelling with their values.
    pub(super) accepted: Vec<String>,
    /// Settings the planner read although the table does not class them honoured: a defect of
    /// the service, which refuses the job rather than let the table and the code disagree.
    pub(super) unlisted_reads: Vec<String>,
}

pub(super) type Accepted = Rc<RefCell<Ledger>>;

/// One JSON object being read; every key must be consumed before [`Node::finish`], which
/// classifies the rest by the [`table`].
pub(super) struct Node<'a> {
    /// Where it is, as the console names it (`Settings.OutputGroups[0].Outputs[1]`).
    pub(super) path: String,
    /// The same without indices and map keys: what the table is keyed by.
    pub(super) pattern: String,
    /// Its keys are names the user chose (`AudioSelectors`).
    pub(super) is_map: bool,
    pub(super) map: &'a Map<String, Value>,
    pub(super) consumed: Vec<&'a str>,
    pub(super) accepted: Accepted,
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn child_pattern(parent: &str, parent_is_map: bool, key: &str) -> String {
    if parent_is_map {
        format!("{parent}{{}}")
    } else {
        join(parent, &console_name(key))
    }
}

impl<'a> Node<'a> {
    pub(super) fn root(value: &'a Value) -> Result<Node<'a>> {
        Node::new(String::new(), String::new(), false, value, Accepted::default())
    }

    pub(super) fn new(
        path: String,
        pattern: String,
        is_map: bool,
        value: &'a Value,
        accepted: Accepted,
    ) -> Result<Node<'a>> {
        match value {
            Value::Object(map) => Ok(Node {
                path,
                pattern,
                is_map,
                map,
                consumed: Vec::new(),
                accepted,
            }),
            other => Err(Unsupported {
                detail: format!("expected an object, found {other}"),
                setting: path,
            }),
        }
    }

    pub(super) fn path_of(&self, key: &str) -> String {
        join(&self.path, &console_name(key))
    }

    pub(super) fn pattern_of(&self, key: &str) -> String {
        child_pattern(&self.pattern, self.is_map, key)
    }

    pub(super) fn take(&mut self, key: &'a str) -> Option<&'a Value> {
        let (key, value) = self.map.get_key_value(key)?;
        self.consumed.push(key.as_str());
        // The planner reads only what the table says it honours.
        if is_leaf(value) && table::class_of(&self.pattern_of(key)) != Some(Class::Honoured) {
            self.accepted.borrow_mut().unlisted_reads.push(self.path_of(key));
        }
        Some(value)
    }

    pub(super) fn string(&mut self, key: &'a str) -> Result<Option<&'a str>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.refuse(key, format!("expected a string, found {other}"))),
        }
    }

    /// A string that must be one of `allowed`.
    pub(super) fn one_of(&mut self, key: &'a str, allowed: &[&str]) -> Result<Option<&'a str>> {
        let value = self.string(key)?;
        match value {
            Some(v) if !allowed.contains(&v) => Err(Unsupported {
                setting: format!("{} = {v}", self.path_of(key)),
                detail: format!("the local MediaConvert implements {}", allowed.join(", ")),
            }),
            _ => Ok(value),
        }
    }

    pub(super) fn int(&mut self, key: &'a str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => match value.as_i64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(Unsupported {
                    setting: format!("{} = {value}", self.path_of(key)),
                    detail: format!("expected an integer in {}..={}", range.start(), range.end()),
                }),
            },
        }
    }

    pub(super) fn object(&mut self, key: &'a str) -> Result<Option<Node<'a>>> {
        let path = self.path_of(key);
        let pattern = self.pattern_of(key);
        let is_map = !self.is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
        let accepted = self.accepted.clone();
        self.take(key)
            .map(|v| Node::new(path, pattern, is_map, v, accepted))
            .transpose()
    }

    pub(super) fn array(&mut self, key: &'a str) -> Result<Vec<Node<'a>>> {
        let path = self.path_of(key);
        let pattern = format!("{}[]", self.pattern_of(key));
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Node::new(
                        format!("{path}[{i}]"),
                        pattern.clone(),
                        false,
                        item,
                        self.accepted.clone(),
                    )
                })
                .collect(),
            Some(other) => Err(Unsupported {
                setting: path,
                detail: format!("expected a list, found {other}"),
            }),
        }
    }

    pub(super) fn refuse(&self, key: &str, detail: impl Into<String>) -> Unsupported {
        Unsupported {
            setting: self.path_of(key),
            detail: detail.into(),
        }
    }

    pub(super) fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.refuse(key, "is required"))
    }

    /// Classifies every key nobody consumed: accepted without local effect (and listed), or
    /// the first one that would change the output refuses the job.
    pub(super) fn finish(self) -> Result<()> {
        for (key, value) in self.map {
            if self.consumed.contains(&key.as_str()) {
                continue;
            }
            let is_map = !self.is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
            let mut ledger = self.accepted.borrow_mut();
            classify_unread(
                &self.path_of(key),
                &self.pattern_of(key),
                is_map,
                value,
                &mut ledger.accepted,
            )?;
        }
        Ok(())
    }
}

/// A value the table classifies as one setting: a scalar or a list of scalars.
fn is_leaf(value: &Value) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => !items.is_empty() && items.iter().all(is_leaf),
        _ => true,
    }
}

/// Walks a setting the planner did not read, down to its leaves.
fn classify_unread(path: &str, pattern: &str, is_map: bool, value: &Value, accepted: &mut Vec<String>) -> Result<()> {
    let refused = |detail: &str| Unsupported {
        setting: path.to_owned(),
        detail: detail.to_owned(),
    };
    match value {
        Value::Null => Ok(()),
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let child_is_map = !is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
                classify_unread(
                    &join(path, &console_name(key)),
                    &child_pattern(pattern, is_map, key),
                    child_is_map,
                    item,
                    accepted,
                )?;
            }
            Ok(())
        }
        Value::Array(items) if !items.is_empty() && !is_leaf(value) => {
            for (index, item) in items.iter().enumerate() {
                classify_unread(
                    &format!("{path}[{index}]"),
                    &format!("{pattern}[]"),
                    false,
                    item,
                    accepted,
                )?;
            }
            Ok(())
        }
        // An empty list names nothing (consoles export `"HopDestinations": []`, `"CaptionDescriptions": []`).
        Value::Array(items) if items.is_empty() => Ok(()),
        // An empty object says nothing either, unless the whole group is one the job may not
        // name (an empty settings object may switch a feature on with its defaults).
        Value::Object(_) | Value::Array(_) if !is_leaf(value) => match table::class_of(pattern) {
            None | Some(Class::Refused) => Err(refused("not implemented by the local MediaConvert")),
            _ => Ok(()),
        },
        leaf => {
            let texts: Vec<String> = match leaf {
                Value::Array(items) => items.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            };
            let shown = texts.join(",");
            match table::class_of(pattern) {
                Some(Class::NoLocalEffect(Values::Any)) => {
                    accepted.push(format!("{path} = {shown}"));
                    Ok(())
                }
                Some(Class::NoLocalEffect(Values::Only(values))) => {
                    if texts.iter().all(|t| values.contains(&t.as_str())) {
                        accepted.push(format!("{path} = {shown}"));
                        Ok(())
                    } else {
                        Err(Unsupported {
                            setting: format!("{path} = {shown}"),
                            detail: format!(
                                "the local MediaConvert accepts only {} (other values would change the output)",
                                if values.is_empty() {
                                    "an empty list".to_owned()
                                } else {
                                    values.join(", ")
                                }
                            ),
                        })
                    }
                }
                Some(Class::Honoured) => Err(refused("is implemented only together with the settings it qualifies")),
                Some(Class::Refused) | None => Err(refused("not implemented by the local MediaConvert")),
            }
        }
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every leaf setting of a request as (`Path` with indices, table pattern): what a job
/// counts as its settings.
pub fn leaf_settings(request: &Value) -> Vec<(String, String)> {
    fn walk(path: &str, pattern: &str, is_map: bool, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    let child_is_map = !is_map && table::MAP_SETTINGS.contains(&console_name(key).as_str());
                    walk(
                        &if is_map {
                            format!("{path}.{key}")
                        } else {
                            join(path, &console_name(key))
                        },
                        &child_pattern(pattern, is_map, key),
                        child_is_map,
                        item,
                        out,
                    );
                }
            }
            Value::Array(items) if !is_leaf(value) => {
                for (index, item) in items.iter().enumerate() {
                    walk(&format!("{path}[{index}]"), &format!("{pattern}[]"), false, item, out);
                }
            }
            Value::Null => {}
            _ => out.push((path.to_owned(), pattern.to_owned())),
        }
    }
    let mut out = Vec::new();
    walk("", "", false, request, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_read_the_table_does_not_call_honoured_is_recorded() {
        let job = json!({"settings": {"adAvailOffset": 0, "followSource": 1}, "role": "r"});
        let mut root = Node::root(&job).unwrap();
        root.take("role");
        let mut settings = root.object("settings").unwrap().unwrap();
        settings.take("adAvailOffset");
        settings.finish().unwrap();
        let ledger = root.accepted.borrow();
        assert_eq!(ledger.unlisted_reads, ["Settings.AdAvailOffset"]);
        assert_eq!(ledger.accepted, ["Settings.FollowSource = 1"]);
    }

    #[test]
    fn leaves_are_listed_with_their_table_patterns() {
        let job = json!({"settings": {"inputs": [{"audioSelectors": {"Audio Selector 1": {"tracks": [1]}}}]}});
        assert_eq!(
            leaf_settings(&job),
            [(
                "Settings.Inputs[0].AudioSelectors.Audio Selector 1.Tracks".to_owned(),
                "Settings.Inputs[].AudioSelectors{}.Tracks".to_owned()
            )]
        );
    }
}
