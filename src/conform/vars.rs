//! Variables in suite JSON: `${name}` inside strings.
//!
//! A string that is exactly `${name}` becomes the variable's JSON value,
//! whatever its type (a captured `producer_id` stays a number); `${name}`
//! inside a longer string is replaced by the value's text (strings without
//! quotes, other values as compact JSON). `$${` writes a literal `${`.
//! Names are letters, digits, `_`, `-` and `.`.

use serde_json::{Map, Value as Json};

/// Variables by name.
pub type Vars = Map<String, Json>;

/// Substitutes every `${name}` in `json`. Object keys are not substituted.
pub fn substitute(json: &Json, vars: &Vars) -> Result<Json, String> {
    Ok(match json {
        Json::String(text) => substitute_str(text, vars)?,
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|item| substitute(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(object) => Json::Object(
            object
                .iter()
                .map(|(key, value)| Ok((key.clone(), substitute(value, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Substitutes one string; a whole-string reference keeps the value's type.
pub fn substitute_str(text: &str, vars: &Vars) -> Result<Json, String> {
    if let Some(name) = whole_reference(text) {
        return vars.get(name).cloned().ok_or_else(|| undefined(name, vars));
    }
    Ok(Json::String(substitute_text(text, vars)?))
}

/// Substitutes into text: every reference becomes the value's text.
pub fn substitute_text(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var(name) => {
                let value = vars.get(name).ok_or_else(|| undefined(name, vars))?;
                match value {
                    Json::String(text) => out.push_str(text),
                    other => out.push_str(&other.to_string()),
                }
            }
        }
    }
    Ok(out)
}

/// The variable names `json` refers to, in order of appearance.
pub fn references(json: &Json) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    collect_references(json, &mut out)?;
    Ok(out)
}

fn collect_references(json: &Json, out: &mut Vec<String>) -> Result<(), String> {
    match json {
        Json::String(text) => {
            for piece in pieces(text)? {
                if let Piece::Var(name) = piece {
                    out.push(name.to_owned());
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                collect_references(item, out)?;
            }
        }
        Json::Object(object) => {
            for value in object.values() {
                collect_references(value, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Largest string a `$repeat` may build.
pub const MAX_GENERATED: usize = 16 * 1024 * 1024;

/// Builds generated values: `{"$repeat": {"text": "x", "count": 1100000}}`
/// becomes the text repeated (at most [`MAX_GENERATED`] bytes), for
/// payloads too large to write out, like a batch over a broker's
/// `message.max.bytes`. Other values are returned as they are.
pub fn generate(json: &Json) -> Result<Json, String> {
    let Json::Object(object) = json else {
        return Ok(json.clone());
    };
    let Some(spec) = object.get("$repeat") else {
        return Ok(json.clone());
    };
    let usage =
        || "takes {\"$repeat\": {\"text\": TEXT, \"count\": N}} and nothing else".to_owned();
    if object.len() != 1 {
        return Err(usage());
    }
    let (Some(text), Some(count)) = (
        spec.get("text").and_then(Json::as_str),
        spec.get("count").and_then(Json::as_u64),
    ) else {
        return Err(usage());
    };
    if spec.as_object().map_or(0, serde_json::Map::len) != 2 {
        return Err(usage());
    }
    let total = usize::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(text.len()))
        .filter(|total| *total <= MAX_GENERATED)
        .ok_or_else(|| format!("$repeat builds at most {MAX_GENERATED} bytes"))?;
    let mut out = String::with_capacity(total);
    for _ in 0..count {
        out.push_str(text);
    }
    Ok(Json::String(out))
}

/// The name when `text` is exactly one `${name}`.
pub fn whole_reference(text: &str) -> Option<&str> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    is_name(name).then_some(name)
}

fn undefined(name: &str, vars: &Vars) -> String {
    let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
    known.sort_unstable();
    format!(
        "variable `{name}` is not defined (defined: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

/// Splits text into literal pieces and references.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    // Each turn consumes at least the `${` or `$${` it found.
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${`: a literal `${`.
            out.push(Piece::Text(&rest[..start - 1]));
            out.push(Piece::Text("${"));
            rest = &rest[start + 2..];
            continue;
        }
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {text:?}"))?;
        let name = &after[..end];
        if !is_name(name) {
            return Err(format!(
                "`${{{name}}}` in {text:?} is not a variable name (letters, digits, _ - .)"
            ));
        }
        out.push(Piece::Var(name));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let Json::Object(map) = json!({
            "topic": "t1",
            "offset": 42,
            "member": "m-1",
            "list": [1, 2],
        }) else {
            unreachable!()
        };
        map
    }

    #[test]
    fn whole_string_reference_keeps_the_type() {
        let out = substitute(&json!({"offset": "${offset}", "l": "${list}"}), &vars());
        assert_eq!(out, Ok(json!({"offset": 42, "l": [1, 2]})));
    }

    #[test]
    fn embedded_references_become_text() {
        let out = substitute(&json!(["kwire-${topic}-${offset}", "${list}!"]), &vars());
        assert_eq!(out, Ok(json!(["kwire-t1-42", "[1,2]!"])));
    }

    #[test]
    fn double_dollar_escapes() {
        let out = substitute(&json!("cost $${topic} ${topic}"), &vars());
        assert_eq!(out, Ok(json!("cost ${topic} t1")));
        assert_eq!(substitute(&json!("$${x}"), &vars()), Ok(json!("${x}")));
    }

    #[test]
    fn undefined_and_malformed_references_are_errors() {
        let error = substitute(&json!({"a": ["${nope}"]}), &vars()).expect_err("undefined");
        assert!(
            error.contains("`nope`") && error.contains("topic"),
            "{error}"
        );
        assert!(substitute(&json!("${open"), &vars()).is_err());
        assert!(substitute(&json!("${bad name}"), &vars()).is_err());
    }

    #[test]
    fn repeat_builds_bounded_strings() {
        let built = generate(&json!({"$repeat": {"text": "ab", "count": 3}}));
        assert_eq!(built, Ok(json!("ababab")));
        assert_eq!(generate(&json!({"a": 1})), Ok(json!({"a": 1})));
        let error = generate(&json!({"$repeat": {"text": "x", "count": MAX_GENERATED + 1}}))
            .expect_err("too large");
        assert!(error.contains("at most"), "{error}");
        assert!(generate(&json!({"$repeat": {"text": "x"}})).is_err());
        assert!(generate(&json!({"$repeat": {"text": "x", "count": 1}, "b": 2})).is_err());
    }

    #[test]
    fn keys_and_non_strings_are_left_alone() {
        let input = json!({"${topic}": 1, "n": null, "b": true});
        assert_eq!(substitute(&input, &vars()), Ok(input.clone()));
        assert_eq!(
            references(&json!({"a": "${x}-${y}", "b": ["${z}"]})),
            Ok(vec!["x".to_owned(), "y".to_owned(), "z".to_owned()])
        );
    }
}
