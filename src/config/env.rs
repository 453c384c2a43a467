//! `${VAR}` expansion in configuration string values.
//!
//! Expansion happens on parsed YAML string values, never on the raw text, so a value from the
//! environment cannot change the structure of the file. `${VAR:-fallback}` gives a fallback for
//! an unset or empty variable, `$${` writes a literal `${`. Numbers and booleans are not expanded.

use yaml_serde::Value;

/// One variable that could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    /// Where in the file (`connectors[0].aws_secret_access_key`).
    pub path: String,
    /// The variable's name.
    pub variable: String,
}

/// Expands every string in `value` in place, reading variables through `lookup`.
pub fn expand_value(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<UnsetVariable>,
) {
    match value {
        Value::String(text) => {
            if text.contains('$') {
                match expand_str(text, lookup) {
                    Ok(expanded) => *text = expanded,
                    Err(variable) => unset.push(UnsetVariable {
                        path: path.to_owned(),
                        variable,
                    }),
                }
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{index}]"), lookup, unset);
            }
        }
        Value::Mapping(mapping) => {
            for (key, item) in mapping.iter_mut() {
                let name = key.as_str().unwrap_or("?");
                let child = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                expand_value(item, &child, lookup, unset);
            }
        }
        Value::Tagged(tagged) => expand_value(&mut tagged.value, path, lookup, unset),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands one string; `Err` carries the first unset variable's name.
pub fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${")
            && let Some(end) = body.find('}')
        {
            let reference = &body[..end];
            let (name, fallback) = match reference.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (reference, None),
            };
            match (lookup(name).filter(|v| !v.is_empty()), fallback) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(fallback)) => out.push_str(fallback),
                (None, None) => return Err(name.to_owned()),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("AKIA123".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        let cases = [
            ("${KEY}", Ok("AKIA123")),
            ("id-${KEY}-x", Ok("id-AKIA123-x")),
            ("${MISSING:-}", Ok("")),
            ("${MISSING:-us-east-1}", Ok("us-east-1")),
            ("${EMPTY:-fallback}", Ok("fallback")),
            ("$${KEY}", Ok("${KEY}")),
            ("cost $5", Ok("cost $5")),
            ("${unterminated", Ok("${unterminated")),
            ("${MISSING}", Err("MISSING")),
            ("${EMPTY}", Err("EMPTY")),
        ];
        for (input, expected) in cases {
            let got = expand_str(input, &lookup);
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn reports_the_path_of_unset_variables() {
        let mut value: Value = yaml_serde::from_str(
            "connectors:\n  - id: a\n    aws_secret_access_key: ${NOPE}\n    page_size: 5\n",
        )
        .unwrap();
        let mut unset = Vec::new();
        expand_value(&mut value, "", &lookup, &mut unset);
        assert_eq!(
            unset,
            vec![UnsetVariable {
                path: "connectors[0].aws_secret_access_key".into(),
                variable: "NOPE".into()
            }]
        );
    }
}
