//! The library's architecture, checked from its source: dependencies point one way
//! (no module imports a module that imports it, directly or through others), each layer
//! imports only the layers below it, and no function is longer than 60 lines.
//!
//! Imports are read from `use` trees and from `crate::`/`super::`/`self::` paths in code,
//! each resolved to the deepest module file it names. Unit tests (`mod tests` at the end
//! of a file, or a `tests.rs` beside it) are left out: they may use anything.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
const MAX_FUNCTION_LINES: usize = 60;

/// Layers and what each may import (besides itself).
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("domain", &["error"]),
    ("lambda", &["error"]),
    ("ports", &["domain", "error"]),
    ("convert", &["domain", "ports", "lambda", "error"]),
    ("adapters", &["ports", "domain", "lambda", "error"]),
    (
        "services",
        &["convert", "ports", "domain", "lambda", "error"],
    ),
];

/// A module: its path from the crate root, and its source without unit tests.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    source: String,
}

fn modules() -> Vec<Module> {
    let mut found = Vec::new();
    walk(Path::new(SRC), &mut found);
    found
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(SRC).unwrap().with_extension("");
            let mut path: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
                path.pop();
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let source = match text.find("#[cfg(test)]\nmod tests") {
                _ if path.last().is_some_and(|name| name == "tests") => String::new(),
                Some(cut) => text[..cut].to_string(),
                None => text,
            };
            Module { path, file, source }
        })
        .collect()
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every path a module names through `crate::`, `super::` or `self::`, as segments from
/// the crate root (`use` groups expanded).
fn referenced_paths(module: &Module) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let code = strip_comments(&module.source);
    for statement in code.split(';') {
        if let Some(tree) = statement.trim_start().strip_prefix("pub use ").or_else(|| {
            statement
                .trim_start()
                .strip_prefix("pub(crate) use ")
                .or_else(|| statement.trim_start().strip_prefix("use "))
        }) {
            expand_use(tree.trim(), Vec::new(), &mut paths);
        }
    }
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                let end = tail
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                paths.push(split_path(&tail[..end]));
            }
            rest = &tail[start.len()..];
        }
    }
    paths
        .into_iter()
        .filter_map(|path| absolute(&module.path, path))
        .collect()
}

fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn split_path(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let mut path = prefix;
        path.extend(split_path(tree.split(" as ").next().unwrap_or(tree)));
        out.push(path);
        return;
    };
    let mut path = prefix;
    path.extend(split_path(&tree[..open]));
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_use(&inner[start..i], path.clone(), out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand_use(&inner[start..], path, out);
    }
}

/// A path relative to `module` as a path from the crate root; `None` for other crates.
/// In `a/b.rs` and in `a/b/mod.rs` alike, `self` is `a::b` and `super` is `a`.
fn absolute(module: &[String], path: Vec<String>) -> Option<Vec<String>> {
    let mut segments = path.into_iter().peekable();
    let mut base: Vec<String> = match segments.peek().map(String::as_str) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("self") | Some("super") => module.to_vec(),
        _ => return None,
    };
    while let Some(segment) = segments.peek() {
        match segment.as_str() {
            "self" => {}
            "super" => {
                base.pop();
            }
            _ => break,
        }
        segments.next();
    }
    base.extend(segments);
    Some(base)
}

/// The deepest module named by `path`.
fn resolve(path: &[String], known: &BTreeSet<Vec<String>>) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| known.contains(prefix))
        .unwrap_or_default()
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges = BTreeMap::new();
    for module in &modules {
        let targets: BTreeSet<Vec<String>> = referenced_paths(module)
            .iter()
            .map(|path| resolve(path, &known))
            .filter(|target| target != &module.path && !target.is_empty())
            .collect();
        edges.insert(module.path.clone(), targets);
    }
    edges
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".into()
    } else {
        path.join("::")
    }
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let edges = graph();
    assert!(edges.len() > 30, "{} modules read", edges.len());
    // Depth-first search; a grey node met again closes a cycle.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, cycles),
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let cycle: Vec<String> = stack[from..].iter().map(|n| name(n)).collect();
                    cycles.push(format!("{} -> {}", cycle.join(" -> "), name(next)));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, targets) in graph() {
        let Some(layer) = module.first() else {
            continue; // the crate root declares every layer
        };
        let may = allowed
            .get(layer.as_str())
            .unwrap_or_else(|| panic!("{layer} is not a known layer"));
        for target in targets {
            let to = target[0].as_str();
            if to != layer && !may.contains(&to) {
                wrong.push(format!("{} imports {}", name(&module), name(&target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_function_is_longer_than_60_lines() {
    let mut long = Vec::new();
    for module in modules() {
        let lines: Vec<&str> = module.source.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
            ]
            .iter()
            .any(|p| code.starts_with(p))
                || code.starts_with("pub(super) fn ");
            if !is_fn {
                continue;
            }
            let indent = &line[..line.len() - code.len()];
            let close = format!("{indent}}}");
            // A declaration without a body ends with `;` before any `{`.
            let body = lines[at..]
                .iter()
                .position(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'));
            if body.is_some_and(|b| lines[at + b].trim_end().ends_with(';')) {
                continue;
            }
            if let Some(end) = lines[at..].iter().position(|l| *l == close)
                && end + 1 > MAX_FUNCTION_LINES
            {
                let file = module.file.strip_prefix(SRC).unwrap().display().to_string();
                long.push(format!("{file}:{} {} lines: {code}", at + 1, end + 1));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_should() {
    let mut paths = Vec::new();
    expand_use("crate::{a::{b, c as d}, e}", Vec::new(), &mut paths);
    assert_eq!(
        paths,
        [
            vec!["crate", "a", "b"],
            vec!["crate", "a", "c"],
            vec!["crate", "e"]
        ]
    );
    let module = vec!["convert".to_string(), "read".to_string()];
    assert_eq!(
        absolute(&module, split_path("super::columns::Lineage")),
        Some(vec!["convert".into(), "columns".into(), "Lineage".into()])
    );
    let edges = graph();
    let read = edges.get(&module).expect("convert::read is a module");
    assert!(read.contains(&vec!["convert".to_string(), "columns".to_string()]));
    assert!(read.contains(&vec!["domain".to_string(), "keys".to_string()]));
}
