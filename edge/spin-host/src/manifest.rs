//! The part of a Spin manifest (`spin_manifest_version = 2`) this host understands: one HTTP
//! component at route `/...`, its source, key-value stores, allowed outbound hosts and variables,
//! with application variables resolved the way `spin up` resolves them: `--variable` flags, then
//! `SPIN_VARIABLE_<NAME>` environment variables, then the manifest's defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Manifest {
    spin_manifest_version: u32,
    #[serde(default)]
    variables: HashMap<String, AppVariable>,
    #[serde(default)]
    trigger: Triggers,
    #[serde(default)]
    component: HashMap<String, Component>,
}

#[derive(Debug, Deserialize)]
struct AppVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Default, Deserialize)]
struct Triggers {
    #[serde(default)]
    http: Vec<HttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct HttpTrigger {
    route: String,
    component: String,
}

#[derive(Debug, Deserialize)]
struct Component {
    source: String,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    variables: HashMap<String, String>,
}

/// The one component to serve, with everything resolved.
#[derive(Debug)]
pub struct App {
    pub source: PathBuf,
    pub key_value_stores: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    /// The component's variables, templates expanded.
    pub variables: HashMap<String, String>,
}

/// Reads `path` and resolves its HTTP component. `overrides` are `--variable name=value` flags;
/// `env` looks up environment variables (passed in so tests need not touch the process's).
pub fn load(path: &Path, overrides: &[(String, String)], env: impl Fn(&str) -> Option<String>) -> anyhow::Result<App> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve(manifest, base, overrides, env)
}

fn resolve(
    manifest: Manifest,
    base: &Path,
    overrides: &[(String, String)],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<App> {
    if manifest.spin_manifest_version != 2 {
        bail!("spin_manifest_version {} is not supported (only 2)", manifest.spin_manifest_version);
    }
    let [trigger] = manifest.trigger.http.as_slice() else {
        bail!("this host serves exactly one [[trigger.http]]; the manifest has {}", manifest.trigger.http.len());
    };
    if trigger.route != "/..." {
        bail!("this host serves one component at route \"/...\", not {:?}", trigger.route);
    }
    let component = manifest
        .component
        .get(&trigger.component)
        .with_context(|| format!("the trigger names component {:?}, which is not defined", trigger.component))?;

    for (name, _) in overrides {
        if !manifest.variables.contains_key(name) {
            bail!("--variable {name}: the manifest defines no such variable");
        }
    }
    let mut app_vars = HashMap::new();
    for (name, var) in &manifest.variables {
        let value = overrides
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())))
            .or_else(|| var.default.clone());
        match value {
            Some(v) => {
                app_vars.insert(name.clone(), v);
            }
            None if var.required => bail!("variable {name} is required and has no value"),
            None => {}
        }
    }
    let expand = |template: &str| expand(template, &app_vars);
    let mut variables = HashMap::new();
    for (name, template) in &component.variables {
        variables.insert(name.clone(), expand(template).with_context(|| format!("component variable {name}"))?);
    }
    let allowed_outbound_hosts = component
        .allowed_outbound_hosts
        .iter()
        .map(|h| expand(h).with_context(|| format!("allowed_outbound_hosts entry {h:?}")))
        .collect::<anyhow::Result<_>>()?;
    Ok(App {
        source: base.join(&component.source),
        key_value_stores: component.key_value_stores.clone(),
        allowed_outbound_hosts,
        variables,
    })
}

/// Replaces each `{{ name }}` with the application variable's value.
fn expand(template: &str, vars: &HashMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| format!("unclosed {{{{ in {template:?}"))?;
        let name = after[..end].trim();
        let value = vars.get(name).with_context(|| format!("{{{{ {name} }}}} names no variable with a value"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "x"
[variables]
origin_url = { default = "http://127.0.0.1:8080" }
issuer = { default = "dev" }
secret = { required = true }
[[trigger.http]]
route = "/..."
component = "edge"
[component.edge]
source = "target/x.wasm"
allowed_outbound_hosts = ["{{ origin_url }}"]
key_value_stores = ["default"]
[component.edge.variables]
origin_url = "{{ origin_url }}"
issuer = "iss:{{issuer}}"
secret = "{{ secret }}"
"#;

    fn app(overrides: &[(&str, &str)], env: &[(&str, &str)]) -> anyhow::Result<App> {
        let m: Manifest = toml::from_str(MANIFEST).unwrap();
        let overrides: Vec<(String, String)> =
            overrides.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        let env: HashMap<String, String> = env.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        resolve(m, Path::new("/app"), &overrides, |k| env.get(k).cloned())
    }

    #[test]
    fn flags_beat_environment_beats_defaults() {
        let a = app(&[("origin_url", "http://o:1")], &[("SPIN_VARIABLE_ISSUER", "env"), ("SPIN_VARIABLE_SECRET", "s")])
            .unwrap();
        assert_eq!(a.variables["origin_url"], "http://o:1");
        assert_eq!(a.variables["issuer"], "iss:env");
        assert_eq!(a.allowed_outbound_hosts, ["http://o:1"]);
        assert_eq!(a.source, Path::new("/app/target/x.wasm"));
        assert_eq!(a.key_value_stores, ["default"]);
    }

    #[test]
    fn missing_required_and_unknown_variables_are_errors() {
        assert!(app(&[], &[]).unwrap_err().to_string().contains("secret is required"));
        assert!(app(&[("nope", "1"), ("secret", "s")], &[]).unwrap_err().to_string().contains("no such variable"));
    }
}
