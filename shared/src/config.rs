//! Typed configuration read from the environment once, at cold start.
//!
//! [`EnvReader`] collects *every* missing or malformed variable before it fails, so a
//! misconfigured deployment is fixed in one round instead of one variable per cold start.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Every problem found in the environment, by variable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{} {}", p.variable, p.problem)?;
        }
        Ok(())
    }
}

/// Reads variables from a snapshot of the environment (or any map, for tests) and remembers
/// what was wrong with each.
pub struct EnvReader {
    vars: HashMap<String, String>,
    problems: Vec<ConfigProblem>,
}

impl EnvReader {
    /// A snapshot of the process environment. Variables that are not valid UTF-8 are reported
    /// as malformed when read.
    pub fn from_env() -> Self {
        let vars = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.into_string().unwrap_or_else(|_| "\u{FFFD}".to_owned()),
                )
            })
            .collect();
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn problem(&mut self, name: &str, problem: impl Into<String>) {
        self.problems.push(ConfigProblem {
            variable: name.to_owned(),
            problem: problem.into(),
        });
    }

    /// A required variable. Returns a placeholder when it is missing or malformed; the problem
    /// is reported by [`Self::finish`], so callers never see the placeholder.
    pub fn required<T>(&mut self, name: &str) -> T
    where
        T: FromStr + Default,
        T::Err: fmt::Display,
    {
        match self.raw(name).map(str::to_owned) {
            None => {
                self.problem(name, "is missing");
                T::default()
            }
            Some(value) => self.parse(name, &value).unwrap_or_default(),
        }
    }

    /// An optional variable with a default.
    pub fn optional_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name).map(str::to_owned) {
            None => default,
            Some(value) => self.parse(name, &value).unwrap_or(default),
        }
    }

    /// An optional variable without a default.
    pub fn optional<T>(&mut self, name: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let value = self.raw(name)?.to_owned();
        self.parse(name, &value)
    }

    /// A comma-separated list, e.g. `THUMBNAIL_SIZES=300,640,1500,3000`.
    pub fn list_or<T>(&mut self, name: &str, default: Vec<T>) -> Vec<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(value) = self.raw(name).map(str::to_owned) else {
            return default;
        };
        let mut items = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<T>() {
                Ok(item) => items.push(item),
                Err(e) => {
                    self.problem(name, format!("has a malformed item {part:?}: {e}"));
                    return default;
                }
            }
        }
        items
    }

    /// Adds a problem found by the caller's own checks (e.g. a value out of range).
    pub fn check(&mut self, ok: bool, name: &str, problem: &str) {
        if !ok {
            self.problem(name, problem);
        }
    }

    fn parse<T>(&mut self, name: &str, value: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(name, format!("is malformed ({value:?}: {e})"));
                None
            }
        }
    }

    /// `Ok(())` when everything read so far was fine, otherwise every problem at once.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_and_malformed_variable_at_once() {
        let mut env = EnvReader::from_pairs([("SIZE", "ten"), ("LIST", "1,x"), ("OK", "5")]);
        let _: String = env.required("BUCKET");
        let _: u32 = env.required("SIZE");
        let _: Vec<u32> = env.list_or("LIST", vec![]);
        let ok: u32 = env.required("OK");
        assert_eq!(ok, 5);
        let err = env.finish().unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(names, ["BUCKET", "SIZE", "LIST"]);
        let text = err.to_string();
        assert!(text.contains("BUCKET is missing"), "{text}");
        assert!(text.contains("SIZE is malformed (\"ten\""), "{text}");
    }

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let mut env = EnvReader::from_pairs([("BLANK", "  ")]);
        assert_eq!(env.optional_or("BLANK", 7u32), 7);
        assert_eq!(env.list_or("SIZES", vec![300u32, 640]), vec![300, 640]);
        assert_eq!(env.optional::<u32>("NOPE"), None);
        assert!(env.finish().is_ok());
    }

    #[test]
    fn lists_are_trimmed() {
        let mut env = EnvReader::from_pairs([("SIZES", " 300, 640 ,1500,")]);
        assert_eq!(env.list_or("SIZES", vec![0u32]), vec![300, 640, 1500]);
    }
}
