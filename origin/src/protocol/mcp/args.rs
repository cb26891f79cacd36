//! Tool arguments, checked field by field: a wrong argument is an error naming the field (which
//! `tools/call` answers as a failed execution, `isError`, for the model to correct), never a
//! panic.

use rmcp::ErrorData as McpError;
use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::data::search::DIMENSIONS;

pub fn invalid(field: &str, problem: impl std::fmt::Display) -> McpError {
    McpError::invalid_params(format!("invalid argument {field}: {problem}"), Some(json!({ "field": field })))
}

/// A tool call's arguments, with the set of names the tool accepts.
#[derive(Debug)]
pub struct Args<'a> {
    map: &'a JsonObject,
}

impl<'a> Args<'a> {
    /// Refuses arguments the tool does not define (its schema says `additionalProperties: false`).
    pub fn new(map: &'a JsonObject, allowed: &[&str]) -> Result<Self, McpError> {
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid(unknown, "unknown argument"));
        }
        Ok(Self { map })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &str, max_chars: usize) -> Result<Option<&'a str>, McpError> {
        match self.get(name) {
            None => Ok(None),
            // PostgreSQL text cannot hold NUL; refusing it here keeps it a clear argument error.
            Some(Value::String(s)) if s.contains('\0') => Err(invalid(name, "must not contain NUL characters")),
            Some(Value::String(s)) if s.chars().count() <= max_chars => Ok(Some(s)),
            Some(Value::String(_)) => Err(invalid(name, format!("longer than {max_chars} characters"))),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    pub fn required_string(&self, name: &str, max_chars: usize) -> Result<&'a str, McpError> {
        self.string(name, max_chars)?.ok_or_else(|| invalid(name, "is required"))
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, McpError> {
        self.string(name, 64)?.map(|s| Uuid::try_parse(s).map_err(|_| invalid(name, "must be a UUID"))).transpose()
    }

    pub fn required_uuid(&self, name: &str) -> Result<Uuid, McpError> {
        self.uuid(name)?.ok_or_else(|| invalid(name, "is required"))
    }

    pub fn integer(&self, name: &str, min: u32, max: u32, default: u32) -> Result<u32, McpError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| invalid(name, format!("must be an integer from {min} to {max}"))),
        }
    }

    pub fn non_negative(&self, name: &str, default: f64) -> Result<f64, McpError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                v.as_f64().filter(|n| n.is_finite() && *n >= 0.0).ok_or_else(|| invalid(name, "must be a number >= 0"))
            }
        }
    }

    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, McpError> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(name, "must be true or false")),
        }
    }

    /// A JSON object (metadata); with `scalars_only`, every value must be a string, number or
    /// boolean (a filter of key = value pairs).
    pub fn object(&self, name: &str, scalars_only: bool) -> Result<Map<String, Value>, McpError> {
        match self.get(name) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => {
                if scalars_only
                    && let Some((k, _)) = m.iter().find(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
                {
                    return Err(invalid(&format!("{name}.{k}"), "must be a string, number or boolean"));
                }
                if contains_nul(&Value::Object(m.clone())) {
                    return Err(invalid(name, "must not contain NUL characters"));
                }
                Ok(m.clone())
            }
            Some(_) => Err(invalid(name, "must be an object")),
        }
    }

    /// A vector of exactly [`DIMENSIONS`] finite numbers.
    pub fn embedding(&self, name: &str) -> Result<Option<Vec<f32>>, McpError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let items = v.as_array().ok_or_else(|| invalid(name, format!("must be an array of {DIMENSIONS} numbers")))?;
        if items.len() != DIMENSIONS {
            return Err(invalid(name, format!("must have {DIMENSIONS} numbers, not {}", items.len())));
        }
        items
            .iter()
            .map(|x| {
                #[allow(clippy::cast_possible_truncation)] // f32 is the column's precision
                x.as_f64().filter(|f| f.is_finite()).map(|f| f as f32)
            })
            .collect::<Option<Vec<f32>>>()
            .map(Some)
            .ok_or_else(|| invalid(name, "must contain only finite numbers"))
    }
}

fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    fn field(e: &McpError) -> &str {
        e.data.as_ref().and_then(|d| d["field"].as_str()).unwrap()
    }

    #[test]
    fn each_failure_names_its_field() {
        let m = obj(json!({"limit": 0, "query": 5, "id": "x", "w": -1, "f": {"a": [1]}, "e": [1, 2], "b": "yes"}));
        let a = Args::new(&m, &["limit", "query", "id", "w", "f", "e", "b"]).unwrap();
        assert_eq!(field(&a.integer("limit", 1, 50, 10).unwrap_err()), "limit");
        assert_eq!(field(&a.required_string("query", 10).unwrap_err()), "query");
        assert_eq!(field(&a.uuid("id").unwrap_err()), "id");
        assert_eq!(field(&a.non_negative("w", 1.0).unwrap_err()), "w");
        assert_eq!(field(&a.object("f", true).unwrap_err()), "f.a");
        assert_eq!(field(&a.embedding("e").unwrap_err()), "e");
        assert_eq!(field(&a.boolean("b", false).unwrap_err()), "b");
        assert_eq!(field(&a.required_string("missing", 10).unwrap_err()), "missing");
        assert_eq!(a.integer("absent", 1, 50, 10).unwrap(), 10);
        // Keys are checked in sorted order; "b" is the first one not allowed.
        assert_eq!(field(&Args::new(&m, &["limit"]).unwrap_err()), "b");
        assert_eq!(a.integer("limit", 1, 50, 10).unwrap_err().code.0, -32602);
    }

    #[test]
    fn null_means_absent() {
        let m = obj(json!({"limit": null, "id": null}));
        let a = Args::new(&m, &["limit", "id"]).unwrap();
        assert_eq!(a.integer("limit", 1, 50, 10).unwrap(), 10);
        assert_eq!(a.uuid("id").unwrap(), None);
    }
}
