//! Enums whose every variant has one fixed spelling on the wire (codes, statuses, kinds).
//!
//! [`wire_enum!`] declares such an enum from one list of `Variant = "SPELLING"` lines and gives
//! it `as_str`, `ALL`, `FromStr`, `Display` and serde, all from that list: the spelling is
//! written once, next to the variant, and nowhere else. A variant that names the same thing as
//! another enum's variant takes that one's spelling (`Pending = Code::ClipPending.as_str()`)
//! instead of writing it a second time.

use std::fmt;

/// A text that names no variant of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    /// The enum's name (`Code`, `TaskStatus`, …).
    pub of: &'static str,
    pub text: String,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a {}", self.text, self.of)
    }
}

impl std::error::Error for UnknownVariant {}

/// Declares a `Copy` enum with a wire spelling per variant; see the module docs. A spelling is a
/// string literal or a constant `&'static str` expression. Attributes (docs,
/// `#[derive(Default)]`, …) on the enum and on each variant are kept.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every variant, in the order declared.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every spelling, in the order declared.
            pub const SPELLINGS: &'static [&'static str] = &[$($text),+];

            /// The spelling on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::wire::UnknownVariant;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                // A scan, not a `match`: a spelling may be an expression, which is no pattern.
                Self::ALL
                    .iter()
                    .copied()
                    .find(|variant| variant.as_str() == text)
                    .ok_or_else(|| $crate::wire::UnknownVariant {
                        of: stringify!($name),
                        text: text.to_owned(),
                    })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse()
                    .map_err(|_| <D::Error as ::serde::de::Error>::unknown_variant(&text, $name::SPELLINGS))
            }
        }
    };
}

pub(crate) use wire_enum;

/// How an enum spells its variants, checked by [`assert_wire_enum`].
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Case {
    /// `SourceUrlInvalid` → `SOURCE_URL_INVALID`
    ScreamingSnake,
    /// `Mediaconvert` → `mediaconvert`
    Snake,
    /// `SmartCut` → `smart-cut`
    Kebab,
    /// `NotAvailable` → `CLIP_NOT_AVAILABLE` with the prefix `CLIP_`
    PrefixedScreamingSnake(&'static str),
}

#[cfg(test)]
impl Case {
    fn spell(self, variant_name: &str) -> String {
        let mut snake = String::new();
        for (i, c) in variant_name.char_indices() {
            if c.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        match self {
            Case::ScreamingSnake => snake.to_ascii_uppercase(),
            Case::Snake => snake,
            Case::Kebab => snake.replace('_', "-"),
            Case::PrefixedScreamingSnake(prefix) => format!("{prefix}{}", snake.to_ascii_uppercase()),
        }
    }
}

/// Every variant of `E` goes to its spelling and back through `as_str`/`FromStr`, `Display`
/// and serde; the spellings are distinct and follow `case` (derived from the variant's name,
/// so a spelling cannot drift from its variant unnoticed).
#[cfg(test)]
pub(crate) fn assert_wire_enum<E>(all: &[E], as_str: fn(E) -> &'static str, case: Case)
where
    E: Copy
        + fmt::Debug
        + fmt::Display
        + PartialEq
        + std::str::FromStr<Err = UnknownVariant>
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let mut seen = std::collections::HashSet::new();
    for &variant in all {
        let text = as_str(variant);
        assert!(seen.insert(text), "{text} is spelled twice");
        assert_eq!(
            text,
            case.spell(&format!("{variant:?}")),
            "{variant:?} is not spelled {case:?}"
        );
        assert_eq!(variant.to_string(), text);
        assert_eq!(text.parse::<E>(), Ok(variant), "{text}");
        let json = serde_json::to_value(variant).unwrap();
        assert_eq!(json, serde_json::Value::String(text.to_owned()));
        assert_eq!(serde_json::from_value::<E>(json).unwrap(), variant);
    }
    let unknown = "certainly not a variant";
    assert_eq!(unknown.parse::<E>().unwrap_err().text, unknown);
    assert!(serde_json::from_value::<E>(serde_json::json!(unknown)).is_err());
}
