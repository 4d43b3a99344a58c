//! Tidy checks on the source tree itself (in the spirit of rust-analyzer's `tidy.rs`):
//! every Rust file says what it is for in a `//!` line, and none grows past 600 lines.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_says_what_it_is_for_and_stays_short() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(files.len() > 50, "the whole workspace was read: {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        if !text.starts_with("//!") {
            problems.push(format!("{}: does not start with a `//!` line saying what it is for", file.display()));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{}: {lines} lines, more than {MAX_LINES}; split it", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
