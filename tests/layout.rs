//! The map of the code (docs/architecture.md) holds: each folder of src/ imports only what the
//! map's table says it may, no file is over 600 lines unless its first comment says why, no
//! function is over 100 lines, no JSON is built or parsed by hand, and model/ holds no SIMD.
//!
//! The rules are read from the map itself, so the page and the code cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(ROOT).join("src")
}

/// The top-level module a file of src/ belongs to: `src/harness/bound/mod.rs` → `harness`,
/// `src/data.rs` → `data`; None for `lib.rs` and `bin/`.
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "bin").then_some(name)
}

/// The map's table: folder → the modules it may import. Rows read
/// `| `src/NAME/` | owns | `a`, `b` |` (or `| `src/NAME.rs` | … |`); "nothing" for none.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let map = fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap();
    let mut rules = BTreeMap::new();
    for line in map.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with("`src/") {
            continue;
        }
        let name = cells[1].trim_matches('`').trim_start_matches("src/").trim_end_matches('/');
        let name = name.trim_end_matches(".rs").to_string();
        let may: BTreeSet<String> = cells[3]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty() && s != "nothing")
            .collect();
        rules.insert(name, may);
    }
    assert!(rules.len() >= 8, "docs/architecture.md: the table of folders was not found ({rules:?})");
    rules
}

/// The top-level modules a source text names through `crate::NAME` outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String = tail.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            found.insert(name);
            rest = tail;
        }
    }
    found
}

#[test]
fn every_folder_imports_only_what_the_map_allows() {
    let rules = allowed();
    let mut wrong = Vec::new();
    for file in rust_files(&src()) {
        let Some(module) = module_of(&file) else { continue };
        let may = rules
            .get(&module)
            .unwrap_or_else(|| panic!("src/{module} is not in docs/architecture.md's table"));
        for used in imports(&fs::read_to_string(&file).unwrap()) {
            if used != module && !may.contains(&used) {
                wrong.push(format!("{} imports crate::{used}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports the map does not allow:\n{}", wrong.join("\n"));
}

#[test]
fn the_map_names_every_folder() {
    let rules = allowed();
    let mut missing: Vec<String> =
        rust_files(&src()).iter().filter_map(|f| module_of(f)).filter(|m| !rules.contains_key(m)).collect();
    missing.dedup();
    assert!(missing.is_empty(), "folders missing from docs/architecture.md: {missing:?}");
    for name in rules.keys() {
        let dir = src().join(name);
        let file = src().join(format!("{name}.rs"));
        assert!(
            dir.is_dir() || file.is_file(),
            "docs/architecture.md names src/{name}, which does not exist"
        );
    }
}

#[test]
fn no_file_over_600_lines_unless_it_says_why() {
    let mut long = Vec::new();
    for file in rust_files(&src()) {
        let text = fs::read_to_string(&file).unwrap();
        let n = text.lines().count();
        let header: String = text.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join(" ");
        if n > 600 && !header.contains("600 lines") {
            long.push(format!("{}: {n} lines", file.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over 600 lines whose first comment does not say why:\n{}",
        long.join("\n")
    );
}

/// Each `fn` item's length in lines, from its signature to the closing brace at its indentation
/// (the source is rustfmt-formatted, so the brace sits alone at the signature's indentation).
fn function_lengths(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let mut words = body.split_whitespace().peekable();
        let mut is_fn = false;
        for w in words.by_ref() {
            if w == "fn" {
                is_fn = true;
                break;
            }
            let qualifier =
                w.starts_with("pub") || matches!(w, "const" | "unsafe" | "async" | "extern" | "\"C\"");
            if !qualifier {
                break;
            }
        }
        if !is_fn || body.starts_with("//") {
            continue;
        }
        let name: String =
            words.next().unwrap_or("").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        // A declaration without a body (a trait's required method) ends in `;` before any `{`.
        let opens = lines[i..].iter().find(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'));
        if opens.is_none_or(|l| l.trim_end().ends_with(';')) {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(len) = lines[i..].iter().position(|l| *l == close) {
            out.push((i + 1, name, len + 1));
        }
    }
    out
}

#[test]
fn no_function_over_100_lines() {
    let mut long = Vec::new();
    for file in rust_files(&src()) {
        for (line, name, len) in function_lengths(&fs::read_to_string(&file).unwrap()) {
            if len > 100 {
                long.push(format!("{}:{line} {name}: {len} lines", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "functions over 100 lines:\n{}", long.join("\n"));
}

#[test]
fn the_length_rule_sees_a_long_function() {
    let mut text = String::from("pub(crate) fn long() {\n");
    text.push_str(&"    step();\n".repeat(120));
    text.push_str("}\nfn short() {\n    step();\n}\n");
    text.push_str("trait T {\n    fn declared(&self) -> u8;\n    fn given(&self) {\n    }\n}\n");
    let found = function_lengths(&text);
    let want = [(1, "long", 122), (123, "short", 3), (128, "given", 2)];
    assert_eq!(found, want.map(|(l, n, k)| (l, n.to_string(), k)));
}

#[test]
fn model_is_description_only() {
    for file in rust_files(&src().join("model")) {
        let text = fs::read_to_string(&file).unwrap();
        for needle in ["target_feature", "core::arch", "std::arch", "gemm::"] {
            assert!(
                !text.contains(needle),
                "{} contains {needle}: kernels live in src/kernels/",
                file.display()
            );
        }
    }
}

#[test]
fn the_import_rule_reads_code_not_comments() {
    let text = "use crate::model::spec::Spec;\n/// see [`crate::harness`]\nlet n = crate::kernels::gemm::SMALL_GEMM; // crate::output\n";
    let want: BTreeSet<String> = ["model", "kernels"].map(String::from).into();
    assert_eq!(imports(text), want);
}
