//! Errors that name the setting at fault by its field, not by a command-line flag.
//!
//! The library validates what it is given (an optimizer's hyperparameters, a spec's loss, an
//! injected fault, a mutant, a dataset's split) and answers with a [`FieldError`]: the field at
//! fault (`betas`, `lr`, `inject_fault.layer`, …) and a message in which every field it mentions is
//! written `{field}` or `{field=value}`. Shown as it is ([`std::fmt::Display`]) the braces go;
//! the commands ([`crate::commands`]) show the same error with each field replaced by the flag
//! that sets it ([`FieldError::render`]), so that the command line speaks of `--betas` where the
//! library speaks of `betas`.
//!
//! ```
//! use backprop::{OptimConfig, OptimizerKind};
//! let mut c = OptimConfig::new(OptimizerKind::Adam, 0.001);
//! c.betas = (0.9, 1.0);
//! let e = c.validate().unwrap_err();
//! let field = e.downcast_ref::<backprop::error::FieldError>().unwrap();
//! assert_eq!(field.field(), "betas");
//! assert_eq!(e.to_string(), "betas: beta2 must lie in [0, 1), got 1");
//! ```

use std::fmt;

/// A value refused by the library, by the field that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    field: &'static str,
    message: String,
}

impl FieldError {
    /// An error about `field`; `message` is the whole sentence, with every field it names written
    /// `{field}` or `{field=value}` (usually starting with `{field}` itself).
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError { field, message: message.into() }
    }

    /// The field at fault: `lr`, `betas`, `inject_fault.layer`, …
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The message with each `{field}` or `{field=value}` replaced by `name(field, value)`
    /// (`value` is None for a bare `{field}`); text in other braces is kept as it is.
    pub fn render(&self, name: impl Fn(&str, Option<&str>) -> String) -> String {
        let mut out = String::with_capacity(self.message.len());
        let mut rest = self.message.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let token = after.find('}').map(|close| &after[..close]).filter(|t| is_token(t));
            match token {
                Some(t) => {
                    let (field, value) = match t.split_once('=') {
                        Some((f, v)) => (f, Some(v)),
                        None => (t, None),
                    };
                    out.push_str(&name(field, value));
                    rest = &after[t.len() + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `field` or `field=value`: a field path of lower-case letters, digits, `_` and `.`, and a value
/// of letters, digits and `-`.
fn is_token(t: &str) -> bool {
    let (field, value) = t.split_once('=').unwrap_or((t, "x"));
    let path = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.';
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-';
    !field.is_empty() && !value.is_empty() && field.chars().all(path) && value.chars().all(word)
}

impl fmt::Display for FieldError {
    /// The message with each field by its own name: `{lr}` as `lr`, `{loss=mse}` as `loss mse`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(|field, value| match value {
            Some(v) => format!("{field} {v}"),
            None => field.to_string(),
        }))
    }
}

impl std::error::Error for FieldError {}

/// Returns early with a [`FieldError`] (as an `anyhow::Error`):
/// `field_bail!("lr", "{{lr}}: must be > 0, got {v}")`.
macro_rules! field_bail {
    ($field:literal, $($fmt:tt)+) => {
        return Err(anyhow::Error::new($crate::error::FieldError::new($field, format!($($fmt)+))))
    };
}
pub(crate) use field_bail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_by_name_or_by_flag() {
        let e = FieldError::new("nesterov", "{nesterov}: needs {momentum} > 0, not {x y} or {}");
        assert_eq!(e.to_string(), "nesterov: needs momentum > 0, not {x y} or {}");
        let flags = e.render(|f, _| format!("--{}", f.replace('_', "-")));
        assert_eq!(flags, "--nesterov: needs --momentum > 0, not {x y} or {}");
        let e = FieldError::new("loss", "{loss=cross-entropy}: needs two outputs");
        assert_eq!(e.to_string(), "loss cross-entropy: needs two outputs");
        assert_eq!(
            e.render(|f, v| format!("--{f} {}", v.unwrap_or(""))),
            "--loss cross-entropy: needs two outputs"
        );
    }
}
