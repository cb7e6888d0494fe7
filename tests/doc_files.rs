//! The README, the pages in `docs/` and the guide's chapters send readers
//! only to files that are in the repository: every relative Markdown link
//! and every repository path in backticks (`src/...`, `tests/...`,
//! `examples/...`, `docs/...`, `bench/...`) must exist.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `path` (absolute) lies in what the published crate leaves out:
/// the benchmark crate (`bench/`, a workspace member of its own) and CI
/// (`.ci/`). In the repository they are checked like the rest; in the
/// unpacked `.crate` (which `cargo package` marks with `Cargo.toml.orig`)
/// a reference to them cannot resolve, and is not a fault of the docs.
fn left_out_of_the_package(path: &Path) -> bool {
    root().join("Cargo.toml.orig").exists()
        && ["bench", ".ci"]
            .iter()
            .any(|dir| normalize(path).starts_with(root().join(dir)))
}

/// `path` with its `..` components resolved (without touching the disk).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The documents checked, relative to the repository root.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![PathBuf::from("README.md")];
    for dir in ["docs", "src/guide"] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
            .collect();
        found.sort();
        docs.extend(found);
    }
    docs
}

/// Relative targets of `[text](target)` links (no URL, anchor or
/// intra-doc path).
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("](") {
        let rest = &text[i + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].split('#').next().unwrap_or("");
        let external = target.contains("://") || target.starts_with("mailto:");
        let rustdoc = target.starts_with("crate") || target.contains("::") || target.is_empty();
        if !external && !rustdoc && !target.contains(' ') {
            out.push(target.to_string());
        }
    }
    out
}

/// Repository paths written in backticks: `src/map.rs`, `tests/example_*.rs`.
fn backticked_paths(text: &str) -> Vec<String> {
    const ROOTS: [&str; 6] = ["src/", "tests/", "examples/", "docs/", "bench/", ".ci/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| ROOTS.iter().any(|r| s.starts_with(r)))
        .filter(|s| !s.contains(' ') && s.contains('.'))
        .map(str::to_string)
        .collect()
}

/// Whether `path` exists; a `*` in the last component matches any run of
/// characters.
fn exists(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((prefix, suffix)) = name.split_once('*') else {
        return path.exists();
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
    })
}

#[test]
fn every_file_the_docs_name_is_in_the_repository() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        let here = root().join(&doc);
        let dir = here.parent().unwrap();
        for link in links(&text) {
            checked += 1;
            let target = dir.join(&link);
            if !exists(&target) && !left_out_of_the_package(&target) {
                missing.push(format!("{}: link to {link}", doc.display()));
            }
        }
        for path in backticked_paths(&text) {
            checked += 1;
            let target = root().join(&path);
            if !exists(&target) && !left_out_of_the_package(&target) {
                missing.push(format!("{}: `{path}`", doc.display()));
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} references found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_must() {
    assert_eq!(
        links("see [a](docs/x.md#top) and [b](crate::Map) and [c](https://x.y/)"),
        ["docs/x.md"]
    );
    assert_eq!(
        backticked_paths("`src/map.rs` and `cargo test` and `tests/example_*.rs`"),
        ["src/map.rs", "tests/example_*.rs"]
    );
    assert!(exists(&root().join("tests/example_*.rs")));
    assert!(!exists(&root().join("tests/nothing_*.rs")));
}

#[test]
fn the_readme_keeps_its_two_commands_first() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("```sh"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[0].starts_with("cargo run --release --example echo_server"));
    assert!(commands[1].starts_with("cargo test"));
}
