//! Key-value stores in memory, shared by every instance and request, behind both interfaces Spin
//! offers for them: `spin:key-value@3.0.0` and `wasi:keyvalue@0.2.0-draft2` (store, atomics,
//! batch). As in Spin, both reach the same stores by label, and a component may open only the
//! labels its manifest lists in `key_value_stores`.
//!
//! Every write takes a fresh version from one counter, so a compare-and-swap compares versions,
//! never values, and cannot be fooled by a value written back (ABA).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::component::{Accessor, HasData, Resource, ResourceTable};

use crate::bindings::spin::key_value::key_value as spin_kv;
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wasi_kv};

#[derive(Debug, Default)]
struct Entry {
    version: u64,
    value: Vec<u8>,
}

#[derive(Debug, Default)]
struct Data {
    /// Label -> key -> entry. Ordered keys, so listing pages are stable.
    stores: HashMap<String, BTreeMap<String, Entry>>,
    next_version: u64,
}

/// The stores of one running host.
#[derive(Debug)]
pub struct Stores {
    allowed: HashSet<String>,
    data: Mutex<Data>,
}

impl Stores {
    pub fn new(labels: impl IntoIterator<Item = String>) -> Arc<Self> {
        Arc::new(Self { allowed: labels.into_iter().collect(), data: Mutex::new(Data::default()) })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A poisoned lock only means another request panicked mid-call; the map itself is
        // always consistent between statements, so carry on with it.
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn opens(&self, label: &str) -> bool {
        self.allowed.contains(label)
    }

    fn get(&self, label: &str, key: &str) -> Option<(u64, Vec<u8>)> {
        self.lock().stores.get(label)?.get(key).map(|e| (e.version, e.value.clone()))
    }

    fn set(&self, label: &str, key: String, value: Vec<u8>) {
        let mut data = self.lock();
        data.next_version += 1;
        let version = data.next_version;
        data.stores.entry(label.to_owned()).or_default().insert(key, Entry { version, value });
    }

    fn delete(&self, label: &str, key: &str) {
        if let Some(s) = self.lock().stores.get_mut(label) {
            s.remove(key);
        }
    }

    fn keys(&self, label: &str) -> Vec<String> {
        self.lock().stores.get(label).map(|s| s.keys().cloned().collect()).unwrap_or_default()
    }

    /// Writes `value` only if the key still has `expected` (None: the key is absent).
    fn swap(&self, label: &str, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<(), Option<u64>> {
        let mut data = self.lock();
        let current = data.stores.get(label).and_then(|s| s.get(key)).map(|e| e.version);
        if current != expected {
            return Err(current);
        }
        data.next_version += 1;
        let version = data.next_version;
        data.stores.entry(label.to_owned()).or_default().insert(key.to_owned(), Entry { version, value });
        Ok(())
    }

    /// Adds `delta` to a key holding a decimal integer (absent counts as 0).
    fn increment(&self, label: &str, key: &str, delta: i64) -> Result<i64, String> {
        let mut data = self.lock();
        let current = match data.stores.get(label).and_then(|s| s.get(key)) {
            None => 0,
            Some(e) => std::str::from_utf8(&e.value)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| format!("the value of {key:?} is not an integer"))?,
        };
        let next = current.checked_add(delta).ok_or_else(|| format!("incrementing {key:?} overflows"))?;
        data.next_version += 1;
        let version = data.next_version;
        data.stores
            .entry(label.to_owned())
            .or_default()
            .insert(key.to_owned(), Entry { version, value: next.to_string().into_bytes() });
        Ok(next)
    }
}

/// An open store (both interfaces' handle): just its label.
#[derive(Debug)]
pub struct OpenStore {
    label: String,
}

/// A compare-and-swap in progress: what the key held when it began.
#[derive(Debug)]
pub struct Cas {
    label: String,
    key: String,
    version: Option<u64>,
    value: Option<Vec<u8>>,
}

/// What the key-value host functions see of a store's data.
pub struct KvView<'a> {
    pub table: &'a mut ResourceTable,
    pub stores: &'a Arc<Stores>,
    /// Added to every operation (see `--kv-latency-ms`).
    pub latency: Duration,
}

/// Waits out the simulated round trip to the store.
async fn round_trip(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// [`round_trip`] for the `spin:key-value` functions, which reach the view through the store.
async fn store_round_trip<T>(accessor: &Accessor<T, Kv>) {
    round_trip(accessor.with(|mut a| a.get().latency)).await;
}

/// `HasData` marker for the key-value interfaces.
pub struct Kv;

impl HasData for Kv {
    type Data<'a> = KvView<'a>;
}

fn label_of(table: &ResourceTable, store: &Resource<OpenStore>) -> wasmtime::Result<String> {
    Ok(table.get(store)?.label.clone())
}

// --- spin:key-value@3.0.0 -------------------------------------------------------------------

impl spin_kv::Host for KvView<'_> {}

impl spin_kv::HostStore for KvView<'_> {
    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl<T> spin_kv::HostStoreWithStore<T> for Kv {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, spin_kv::Error>> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            if !view.stores.opens(&label) {
                return Ok(Err(spin_kv::Error::NoSuchStore));
            }
            Ok(Ok(view.table.push(OpenStore { label })?))
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            let label = label_of(view.table, &store)?;
            Ok(Ok(view.stores.get(&label, &key).map(|(_, v)| v)))
        })
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            let label = label_of(view.table, &store)?;
            view.stores.set(&label, key, value);
            Ok(Ok(()))
        })
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            let label = label_of(view.table, &store)?;
            view.stores.delete(&label, &key);
            Ok(Ok(()))
        })
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            let label = label_of(view.table, &store)?;
            Ok(Ok(view.stores.get(&label, &key).is_some()))
        })
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<(
        wasmtime::component::StreamReader<String>,
        wasmtime::component::FutureReader<Result<(), spin_kv::Error>>,
    )> {
        store_round_trip(accessor).await;
        accessor.with(|mut access| {
            let view = access.get();
            let label = label_of(view.table, &store)?;
            let keys = view.stores.keys(&label);
            let stream = wasmtime::component::StreamReader::new(&mut access, keys)?;
            let done = wasmtime::component::FutureReader::new(&mut access, async { wasmtime::error::Ok(Ok(())) })?;
            Ok((stream, done))
        })
    }
}

// --- wasi:keyvalue@0.2.0-draft2 --------------------------------------------------------------

impl wasi_kv::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<OpenStore>, wasi_kv::Error>> {
        round_trip(self.latency).await;
        if !self.stores.opens(&identifier) {
            return Ok(Err(wasi_kv::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(OpenStore { label: identifier })?))
    }
}

/// Keys per `list-keys` page.
const LIST_PAGE: usize = 1000;

impl wasi_kv::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        Ok(Ok(self.stores.get(&label, &key).map(|(_, v)| v)))
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        self.stores.set(&label, key, value);
        Ok(Ok(()))
    }

    async fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        self.stores.delete(&label, &key);
        Ok(Ok(()))
    }

    async fn exists(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        Ok(Ok(self.stores.get(&label, &key).is_some()))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        // The cursor is the last key of the previous page; keys are ordered.
        let keys: Vec<String> = self
            .stores
            .keys(&label)
            .into_iter()
            .filter(|k| cursor.as_ref().is_none_or(|c| k > c))
            .take(LIST_PAGE + 1)
            .collect();
        let more = keys.len() > LIST_PAGE;
        let keys: Vec<String> = keys.into_iter().take(LIST_PAGE).collect();
        let cursor = if more { keys.last().cloned() } else { None };
        Ok(Ok(wasi_kv::KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        Ok(self.stores.increment(&label, &key, delta).map_err(wasi_kv::Error::Other))
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        round_trip(self.latency).await;
        let cas = self.table.delete(cas)?;
        match self.stores.swap(&cas.label, &cas.key, cas.version, value) {
            Ok(()) => Ok(Ok(())),
            Err(_) => {
                // A fresh handle at the key's current state, as the interface asks, for a retry.
                let (version, value) = self.stores.get(&cas.label, &cas.key).unzip();
                let retry = self.table.push(Cas { label: cas.label, key: cas.key, version, value })?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        let (version, value) = self.stores.get(&label, &key).unzip();
        Ok(Ok(self.table.push(Cas { label, key, version, value })?))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        round_trip(self.latency).await;
        Ok(Ok(self.table.get(&cas)?.value.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        Ok(Ok(keys
            .into_iter()
            .map(|k| {
                let v = self.stores.get(&label, &k).map(|(_, v)| v);
                (k, v)
            })
            .collect()))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        for (k, v) in key_values {
            self.stores.set(&label, k, v);
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        round_trip(self.latency).await;
        let label = label_of(self.table, &bucket)?;
        for k in keys {
            self.stores.delete(&label, &k);
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_fails_after_an_intervening_write_even_of_the_same_value() {
        let s = Stores::new(["default".to_owned()]);
        s.set("default", "k".into(), b"1".to_vec());
        let (v, _) = s.get("default", "k").unwrap();
        s.set("default", "k".into(), b"1".to_vec());
        assert!(s.swap("default", "k", Some(v), b"2".to_vec()).is_err());
        let (v, _) = s.get("default", "k").unwrap();
        assert!(s.swap("default", "k", Some(v), b"2".to_vec()).is_ok());
        assert_eq!(s.get("default", "k").unwrap().1, b"2");
    }

    #[test]
    fn swap_on_an_absent_key_creates_it_once() {
        let s = Stores::new(["default".to_owned()]);
        assert!(s.swap("default", "new", None, b"a".to_vec()).is_ok());
        assert!(s.swap("default", "new", None, b"b".to_vec()).is_err());
    }

    #[test]
    fn only_listed_labels_open() {
        let s = Stores::new(["default".to_owned()]);
        assert!(s.opens("default"));
        assert!(!s.opens("other"));
    }
}
