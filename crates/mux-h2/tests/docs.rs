//! docs/TUNNEL.md quotes the server examples rather than copying them: each
//! Rust block marked `<!-- quote: PATH -->` must appear verbatim in the
//! file at PATH, which `cargo test` and clippy compile. A change to an
//! example that the page does not follow fails here.
// Test helpers outside `#[test]` fns panic on failure by design.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;

/// The workspace root, two levels above this crate.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/mux-h2 sits two levels below the workspace root")
}

/// Every `(path, code)` quoted by `doc`.
fn quotes(doc: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- quote: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```rust"),
            "quote of {path}: no rust block"
        );
        let mut code = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            code.push_str(line);
            code.push('\n');
        }
        found.push((path.to_owned(), code));
    }
    found
}

#[test]
fn tunnel_md_quotes_the_compiled_examples_verbatim() {
    let doc = std::fs::read_to_string(root().join("docs/TUNNEL.md")).unwrap();
    let quotes = quotes(&doc);
    for example in ["axum_server.rs", "hyper_server.rs"] {
        assert!(
            quotes.iter().any(|(path, _)| path.ends_with(example)),
            "TUNNEL.md quotes nothing from {example}"
        );
    }
    for (path, code) in &quotes {
        let source = std::fs::read_to_string(root().join(path)).unwrap();
        assert!(!code.trim().is_empty(), "empty quote of {path}");
        assert!(
            source.contains(code.as_str()),
            "TUNNEL.md's quote of {path} no longer matches the file:\n{code}"
        );
    }
}
