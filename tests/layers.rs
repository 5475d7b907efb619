//! The layers `src/lib.rs` declares, enforced: every `use` (and every `crate::`/`super::` path)
//! in `src/` goes to a module of the same layer or a lower one, and no two files use each
//! other, however indirectly. A failure names the file and line that goes against the order.
//!
//! The binary's own modules (`mod` lines in `src/main.rs`) are outside the library and
//! not checked here.
//!
//! Reading the source is crude on purpose (no parser, no new tool): `use` statements with
//! their braces expanded, and paths that start with `crate::` or `super::`; comments and
//! `#[cfg(test)] mod tests` blocks are left out (tests may use anything).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first, as `src/lib.rs`'s Layout doc states them (layer 1 first): each
/// module belongs to the layer of its longest prefix listed here. `server` and `""` (the
/// crate root) stand for themselves only, so a new module must be placed here by name.
const LAYERS: &[&[&str]] = &[
    &["error", "private_files", "memory"],
    &["store"],
    &["auth", "logging"],
    &[
        "server::socket",
        "server::telnet",
        "server::protocol",
        "server::text",
        "server::wire",
        "server::outbox",
        "server::limits",
        "server::bucket",
        "server::searches",
        "server::quiet",
        "server::metrics",
        "server::proxy",
        "server::door",
        "server::pool",
    ],
    &["server::moderation", "server::config", "server::refusals"],
    &["server::hub"],
    &[
        "server::shared",
        "server::session",
        "server::commands",
        "server::connection",
        "server::moderator",
        "server::cleanup",
    ],
    &["server::admit", "server::transport"],
    &[
        "server",
        "server::accept",
        "server::janitor",
        "server::operator",
        "server::reload",
        "server::listen",
    ],
    &["console", "admin", ""],
];

/// A module: its path below the crate, `a::b` (`""` for the crate root).
type Module = String;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn layer_of(module: &str) -> usize {
    let mut best: Option<(usize, usize)> = None; // (prefix length, layer)
    for (layer, prefixes) in LAYERS.iter().enumerate() {
        for p in *prefixes {
            let exact_only = p.is_empty() || *p == "server";
            let fits = module == *p || (!exact_only && module.starts_with(&format!("{p}::")));
            if fits && best.is_none_or(|(len, _)| p.len() > len) {
                best = Some((p.len(), layer));
            }
        }
    }
    best.map(|(_, l)| l + 1)
        .unwrap_or_else(|| panic!("module {module:?} is in no layer: add it to LAYERS and lib.rs"))
}

/// The text a file contributes: no comments, no test module.
fn code(text: &str) -> String {
    // The inline test module only (`mod tests {`); `mod tests;` declares a file, read on its
    // own, and what follows it in this file is code like the rest.
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`.
fn expand(path: &str) -> Vec<String> {
    let path = path.trim();
    let Some(open) = path.find('{') else {
        let p = path.split(" as ").next().unwrap_or(path).trim();
        return vec![p.to_string()];
    };
    let prefix = path[..open].trim_end_matches("::");
    let close = path.rfind('}').filter(|&c| c > open).unwrap_or(path.len());
    let inner = &path[open + 1..close];
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    parts.push(cur);
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            if p == "self" {
                vec![prefix.to_string()]
            } else {
                expand(&format!("{prefix}::{p}"))
            }
        })
        .collect()
}

/// The paths a file's code names, with their line numbers.
fn paths(code: &str) -> Vec<(usize, String)> {
    let line_at = |at: usize| code[..at].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut statements = Vec::new();
    // `use` statements: lines that start with one (`pub use`, `pub(crate) use` too).
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let t = line.trim_start();
        let t = t
            .strip_prefix("pub ")
            .or_else(|| t.strip_prefix("pub(crate) "))
            .or_else(|| t.strip_prefix("pub(super) "))
            .unwrap_or(t);
        let Some(rest) = t.strip_prefix("use ") else {
            continue;
        };
        let at = start + (line.len() - rest.len());
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        statements.push(at..at + end);
        for p in expand(&code[at..at + end]) {
            out.push((line_at(start), p.replace(char::is_whitespace, "")));
        }
    }
    // Paths in code (not in the `use` statements read above).
    for word in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(word) {
            let start = from + at;
            from = start + word.len();
            if statements.iter().any(|r| r.contains(&start)) {
                continue;
            }
            if code[..start]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue;
            }
            let end = code[start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| start + e);
            out.push((
                line_at(start),
                code[start..end].trim_end_matches(':').to_string(),
            ));
        }
    }
    out
}

/// The module a path names: the longest prefix of it that is a module of the crate.
fn target(from: &str, path: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segs.first() {
        Some(&"crate") => {
            segs.remove(0);
            Vec::new()
        }
        Some(&"super") | Some(&"self") => from.split("::").map(String::from).collect(),
        _ => return None,
    };
    if from.is_empty() {
        base.clear();
    }
    while let Some(&s) = segs.first() {
        match s {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        segs.remove(0);
    }
    let full: Vec<String> = base
        .into_iter()
        .chain(segs.iter().map(|s| s.to_string()))
        .collect();
    (0..=full.len())
        .rev()
        .map(|n| full[..n].join("::"))
        .find(|m| modules.contains(m))
}

struct Edge {
    file: PathBuf,
    line: usize,
    to: Module,
}

/// The `.rs` files under `dir`, leaving out the folder `skip` (a path below `dir`).
fn rust_files(dir: &Path, skip: Option<&str>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if skip.is_none_or(|s| !p.ends_with(s)) {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
}

fn graph() -> BTreeMap<Module, Vec<Edge>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = rust_files(&src, None);
    files.retain(|p| !p.ends_with("main.rs"));
    // The binary's own modules (`mod x;` in main.rs: the CLI, the load generator, the echo
    // server) are not the library's.
    let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
    let binary: Vec<String> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(String::from)
        .collect();
    files.retain(|f| {
        let m = module_of(&src, f);
        !binary
            .iter()
            .any(|b| m == *b || m.starts_with(&format!("{b}::")))
    });
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<Module, Vec<Edge>> = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        let code = code(&std::fs::read_to_string(file).unwrap());
        let list = edges.entry(from.clone()).or_default();
        for (line, path) in paths(&code) {
            if let Some(to) = target(&from, &path, &modules) {
                if to != from {
                    list.push(Edge {
                        file: file.strip_prefix(&src).unwrap().to_path_buf(),
                        line,
                        to,
                    });
                }
            }
        }
    }
    edges
}

#[test]
fn every_use_goes_to_the_same_layer_or_a_lower_one() {
    let graph = graph();
    // Every module has its place (this panics, naming one that has none).
    for m in graph.keys() {
        layer_of(m);
    }
    let mut wrong = Vec::new();
    for (from, edges) in graph {
        for e in edges {
            let (lf, lt) = (layer_of(&from), layer_of(&e.to));
            if lt > lf {
                wrong.push(format!(
                    "src/{}:{}: {from} (layer {lf}) uses {} (layer {lt}), a layer above it",
                    e.file.display(),
                    e.line,
                    e.to
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_use_each_other() {
    let g = graph();
    // Depth-first search for a cycle; reports one with the lines that make it.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<Module, Vec<Edge>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<(&'a str, String)>,
    ) -> Option<Vec<String>> {
        state.insert(m, 1);
        for e in g.get(m).into_iter().flatten() {
            let to = e.to.as_str();
            let at = format!("src/{}:{}", e.file.display(), e.line);
            match state.get(to) {
                Some(1) => {
                    let from = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[from..]
                        .iter()
                        .map(|(n, at)| format!("{n} ({at})"))
                        .collect();
                    cycle.push(format!("{m} ({at}) -> {to}"));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    stack.push((m, at));
                    if let Some(c) = visit(to, g, state, stack) {
                        return Some(c);
                    }
                    stack.pop();
                }
            }
        }
        state.insert(m, 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if !state.contains_key(m.as_str()) {
            if let Some(cycle) = visit(m, &g, &mut state, &mut Vec::new()) {
                panic!("a cycle of modules:\n{}", cycle.join("\n"));
            }
        }
    }
}

#[test]
fn the_check_sees_a_back_edge() {
    // The reader itself: a use of a higher layer from a lower one is found and placed.
    let modules: BTreeSet<Module> = ["store", "store::users", "server", "server::hub"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let code = code("use crate::server::hub::{Event, Hub};\n// use crate::server;\nfn f() { super::super::server::hub::x(); }\n#[cfg(test)]\nmod tests { use crate::server; }\n");
    let found: Vec<_> = paths(&code)
        .into_iter()
        .filter_map(|(line, p)| target("store::users", &p, &modules).map(|t| (line, t)))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, "server::hub".to_string()),
            (1, "server::hub".to_string()),
            (3, "server::hub".to_string())
        ]
    );
    assert!(layer_of("server::hub") > layer_of("store::users"));
    assert_eq!(
        expand("a::{b, c::{d, self}, e as f}"),
        vec!["a::b", "a::c::d", "a::c", "a::e"]
    );
}

#[test]
fn no_module_outside_the_ways_names_one() {
    // The seam: outside `server/transport/`, the library goes through `transport::Way` and
    // the `ways!` list, never to one way in by name. (The binary's `gen-cert`, a TLS
    // command, is not the library's.)
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let list = std::fs::read_to_string(src.join("server/transport/mod.rs")).unwrap();
    let ways: Vec<String> = list
        .lines()
        .find_map(|l| l.trim().strip_prefix("ways!(")?.strip_suffix(");"))
        .expect("the ways! list in transport/mod.rs")
        .split(',')
        .map(|w| format!("server::transport::{}", w.trim()))
        .collect();
    assert!(ways.len() >= 4, "{ways:?}");
    let mut wrong = Vec::new();
    for (from, edges) in graph() {
        if from == "server::transport" || from.starts_with("server::transport::") {
            continue;
        }
        for e in edges {
            if ways
                .iter()
                .any(|w| e.to == *w || e.to.starts_with(&format!("{w}::")))
            {
                wrong.push(format!(
                    "src/{}:{}: {from} names {}",
                    e.file.display(),
                    e.line,
                    e.to
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
