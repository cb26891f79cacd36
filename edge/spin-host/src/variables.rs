//! `spin:variables@3.0.0`: the component's variables, resolved once from the manifest when the
//! host starts (see `manifest.rs`), read by name.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{Accessor, HasData};

use crate::bindings::spin::variables::variables as spin_vars;

/// What the variables host functions see.
pub struct VarsView<'a> {
    pub values: &'a Arc<HashMap<String, String>>,
}

/// `HasData` marker for `spin:variables`.
pub struct Vars;

impl HasData for Vars {
    type Data<'a> = VarsView<'a>;
}

impl spin_vars::Host for VarsView<'_> {}

impl<T> spin_vars::HostWithStore<T> for Vars {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> wasmtime::Result<Result<String, spin_vars::Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            // Spin's rule for names: lower-case letters, digits and underscores, starting with a
            // letter.
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Ok(Err(spin_vars::Error::InvalidName(name)));
            }
            Ok(view.values.get(&name).cloned().ok_or(spin_vars::Error::Undefined(name)))
        })
    }
}
