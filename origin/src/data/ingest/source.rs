//! What `agentplane ingest` reads: BEIR corpus JSONL (`_id`, `title`, `text`, optional
//! `metadata`), Markdown and plain text files, from one file or a directory tree. Records stream
//! out one at a time; an unusable line or file becomes a [`Bad`] item naming where it was, so the
//! caller reports it and goes on.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// One document to store. `external_id` is the caller's id: the BEIR `_id`, or the file's path
/// relative to the directory ingested.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub external_id: String,
    pub title: String,
    pub content: String,
    pub metadata: Map<String, Value>,
}

/// Input that was skipped, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Bad {
    /// `path:line` for JSONL, the path for a file.
    pub location: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record(Record),
    Bad(Bad),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jsonl,
    Markdown,
    Text,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path relative to the ingested directory, with `/` separators.
    pub relative: String,
    pub kind: Kind,
}

fn kind_of(path: &Path) -> Option<Kind> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "jsonl" => Some(Kind::Jsonl),
        "md" | "markdown" => Some(Kind::Markdown),
        "txt" | "text" => Some(Kind::Text),
        _ => None,
    }
}

/// The files to read: `path` itself, or every supported file under it in a stable order. A BEIR
/// collection directory (one holding `corpus.jsonl`) contributes only its corpus, not its queries.
/// Also returns how many files were passed over for their type.
pub fn files(path: &Path) -> std::io::Result<(Vec<SourceFile>, usize)> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = kind_of(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not .jsonl, .md or .txt", path.display()),
            )
        })?;
        return Ok((vec![SourceFile { path: path.to_path_buf(), relative: name, kind }], 0));
    }
    let corpus = path.join("corpus.jsonl");
    if corpus.is_file() {
        return Ok((vec![SourceFile { path: corpus, relative: "corpus.jsonl".into(), kind: Kind::Jsonl }], 0));
    }
    let mut found = Vec::new();
    let mut ignored = 0;
    for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(kind) = kind_of(entry.path()) else {
            ignored += 1;
            continue;
        };
        let relative = entry.path().strip_prefix(path).unwrap_or(entry.path());
        let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        found.push(SourceFile { path: entry.path().to_path_buf(), relative, kind });
    }
    Ok((found, ignored))
}

/// About how many records `files` hold (JSONL lines, one per other file), for a progress bar.
pub fn estimate(files: &[SourceFile]) -> u64 {
    files
        .iter()
        .map(|f| match f.kind {
            Kind::Jsonl => File::open(&f.path)
                .map(|file| {
                    BufReader::new(file).split(b'\n').filter(|l| l.as_ref().is_ok_and(|l| !l.is_empty())).count() as u64
                })
                .unwrap_or(0),
            Kind::Markdown | Kind::Text => 1,
        })
        .sum()
}

/// Streams the items of `files`, in order.
#[derive(Debug)]
pub struct Reader {
    files: std::vec::IntoIter<SourceFile>,
    current: Option<(SourceFile, Lines<BufReader<File>>, usize)>,
}

impl Reader {
    pub fn new(files: Vec<SourceFile>) -> Self {
        Self { files: files.into_iter(), current: None }
    }
}

impl Iterator for Reader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some((file, lines, number)) = &mut self.current {
                match lines.next() {
                    Some(line) => {
                        *number += 1;
                        let location = format!("{}:{number}", file.path.display());
                        match line {
                            Ok(line) if line.trim().is_empty() => continue,
                            Ok(line) => return Some(beir_line(&line, location)),
                            Err(e) => return Some(Item::Bad(Bad { location, reason: e.to_string() })),
                        }
                    }
                    None => self.current = None,
                }
            }
            let file = self.files.next()?;
            match file.kind {
                Kind::Jsonl => match File::open(&file.path) {
                    Ok(f) => self.current = Some((file, BufReader::new(f).lines(), 0)),
                    Err(e) => return Some(bad_file(&file, e)),
                },
                Kind::Markdown | Kind::Text => return Some(whole_file(&file)),
            }
        }
    }
}

fn bad_file(file: &SourceFile, e: impl std::fmt::Display) -> Item {
    Item::Bad(Bad { location: file.path.display().to_string(), reason: e.to_string() })
}

#[derive(Deserialize)]
struct BeirLine {
    #[serde(rename = "_id")]
    id: Value,
    #[serde(default)]
    title: String,
    text: String,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

fn beir_line(line: &str, location: String) -> Item {
    let bad = |reason: String| Item::Bad(Bad { location: location.clone(), reason });
    let parsed: BeirLine = match serde_json::from_str(line) {
        Ok(p) => p,
        Err(e) => return bad(format!("not a BEIR corpus line: {e}")),
    };
    let external_id = match parsed.id {
        Value::String(s) if !s.is_empty() => s,
        Value::Number(n) => n.to_string(),
        _ => return bad("`_id` must be a non-empty string".into()),
    };
    checked(Record {
        external_id,
        title: parsed.title,
        content: parsed.text,
        metadata: parsed.metadata.unwrap_or_default(),
    })
    .unwrap_or_else(bad)
}

fn whole_file(file: &SourceFile) -> Item {
    let text = match std::fs::read(&file.path).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => return bad_file(file, "not UTF-8 text"),
        Err(e) => return bad_file(file, e),
    };
    let stem = file.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let (title, format) = match file.kind {
        // The first level-one heading names a Markdown document.
        Kind::Markdown => {
            (text.lines().find_map(|l| l.strip_prefix("# ")).map(|t| t.trim().to_owned()).unwrap_or(stem), "markdown")
        }
        Kind::Text | Kind::Jsonl => (stem, "text"),
    };
    let mut metadata = Map::new();
    metadata.insert("path".into(), Value::String(file.relative.clone()));
    metadata.insert("format".into(), Value::String(format.into()));
    checked(Record { external_id: file.relative.clone(), title, content: text, metadata })
        .unwrap_or_else(|reason| bad_file(file, reason))
}

/// What PostgreSQL or search could not take.
fn checked(r: Record) -> Result<Item, String> {
    if r.content.trim().is_empty() && r.title.trim().is_empty() {
        return Err("empty document (no title, no text)".into());
    }
    if r.external_id.contains('\0') || r.title.contains('\0') || r.content.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(Item::Record(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(dir: &Path) -> Vec<Item> {
        Reader::new(files(dir).unwrap().0).collect()
    }

    #[test]
    fn reads_beir_markdown_and_text_and_names_bad_lines() {
        let dir = std::env::temp_dir().join(format!("agentplane-source-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(
            dir.join("a.jsonl"),
            "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"x\", \"metadata\": {\"k\": 1}}\n\n{broken\n{\"_id\": 7, \"text\": \"y\"}\n{\"_id\": \"\", \"text\": \"z\"}\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes/b.md"), "intro\n# The Title\nbody").unwrap();
        std::fs::write(dir.join("notes/c.txt"), "plain").unwrap();
        std::fs::write(dir.join("notes/skip.bin"), [0u8, 1]).unwrap();
        assert_eq!(files(&dir).unwrap().1, 1);
        let got = items(&dir);
        assert_eq!(got.len(), 6);
        let Item::Record(r) = &got[0] else { panic!("{got:?}") };
        assert_eq!((r.external_id.as_str(), r.title.as_str(), r.metadata["k"].as_i64()), ("d1", "T", Some(1)));
        let Item::Bad(b) = &got[1] else { panic!("{got:?}") };
        assert!(b.location.ends_with("a.jsonl:3"), "{b:?}");
        let Item::Record(r) = &got[2] else { panic!("{got:?}") };
        assert_eq!(r.external_id, "7");
        let Item::Bad(b) = &got[3] else { panic!("{got:?}") };
        assert!(b.location.ends_with("a.jsonl:5") && b.reason.contains("_id"), "{b:?}");
        let Item::Record(r) = &got[4] else { panic!("{got:?}") };
        assert_eq!((r.external_id.as_str(), r.title.as_str()), ("notes/b.md", "The Title"));
        let Item::Record(r) = &got[5] else { panic!("{got:?}") };
        assert_eq!((r.external_id.as_str(), r.title.as_str(), r.content.as_str()), ("notes/c.txt", "c", "plain"));
        assert_eq!(estimate(&files(&dir).unwrap().0), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
