//! The C ABI stays stable: every declaration of the committed baseline of
//! the current ABI version (abi/adgan-abi-<ADGAN_ABI_VERSION>.txt) must be
//! in include/adgan.h unchanged: each function's signature, each handle and
//! callback type, each enum value, each constant. Adding is fine; changing
//! or removing anything fails here, and then needs a new ABI version
//! (ADGAN_ABI_VERSION in src/ffi/mod.rs) and a new baseline, written with
//! `ADGAN_WRITE_ABI_BASELINE=1 cargo test --release --test abi`. The
//! header itself is checked against src/ffi/ by tests/header.rs.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text without C comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        let line_first = matches!((block, line), (Some(b), Some(l)) if l < b);
        match (block, line) {
            (Some(b), _) if !line_first => {
                out.push_str(&rest[..b]);
                let end = rest[b..].find("*/").expect("unterminated comment") + b + 2;
                rest = &rest[end..];
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |e| &rest[l + e..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

fn squash(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.replace("( ", "(").replace(" )", ")").replace(" ,", ",")
}

/// Every ABI-relevant declaration of a header, one normalised line each:
/// `#define` constants (not the release version), enum values (one line
/// per value, so values may be added), typedefs and function prototypes.
fn declarations(header: &str) -> BTreeSet<String> {
    let text = strip_comments(header);
    let mut out = BTreeSet::new();
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(def) = t.strip_prefix("#define ") {
            let name = def.split_whitespace().next().unwrap_or("");
            if name.starts_with("ADGAN_")
                && !name.starts_with("ADGAN_VERSION_")
                && name != "ADGAN_H"
            {
                out.insert(squash(&format!("#define {def}")));
            }
        } else if !t.starts_with('#') {
            code.push_str(line);
            code.push('\n');
        }
    }
    let code = code.replace("extern \"C\" {", "");
    for decl in code.split(';') {
        let d = squash(decl);
        if d.is_empty() || d == "}" {
            continue;
        }
        if let Some(rest) = d.strip_prefix("enum ") {
            let (head, body) = rest.split_once('{').expect("enum with a body");
            let name = head.split(':').next().unwrap().trim();
            out.insert(format!("enum {}", squash(head)));
            for value in body.trim_end_matches('}').split(',') {
                let v = squash(value);
                if !v.is_empty() {
                    out.insert(format!("enum {name}: {v}"));
                }
            }
        } else {
            out.insert(d);
        }
    }
    out
}

fn abi_version(header: &str) -> u32 {
    header
        .lines()
        .find_map(|l| l.strip_prefix("#define ADGAN_ABI_VERSION "))
        .expect("include/adgan.h defines ADGAN_ABI_VERSION")
        .trim()
        .parse()
        .expect("ADGAN_ABI_VERSION is a number")
}

#[test]
fn the_header_keeps_every_declaration_of_the_abi_baseline() {
    let header = std::fs::read_to_string(root().join("include/adgan.h")).unwrap();
    let version = abi_version(&header);
    let path = root().join(format!("abi/adgan-abi-{version}.txt"));
    let now = declarations(&header);
    if std::env::var_os("ADGAN_WRITE_ABI_BASELINE").is_some() {
        let mut text = format!(
            "# The adGAN C ABI, version {version}: every declaration of include/adgan.h that\n\
             # binaries depend on, normalised, one per line. tests/abi.rs fails when one\n\
             # is changed or removed. Written by ADGAN_WRITE_ABI_BASELINE=1 cargo test --test abi.\n"
        );
        for d in &now {
            text.push_str(d);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let baseline = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no ABI baseline {} for ADGAN_ABI_VERSION {version}: a new ABI version needs its \
             baseline (ADGAN_WRITE_ABI_BASELINE=1 cargo test --release --test abi)",
            path.display()
        )
    });
    let lost: Vec<&str> = baseline
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| !now.contains(*l))
        .collect();
    assert!(
        lost.is_empty(),
        "include/adgan.h changes or removes {} declaration(s) of ABI version {version} \
         ({}):\n  {}\nKeep them (add new functions instead), or raise ADGAN_ABI_VERSION and \
         write a new baseline.",
        lost.len(),
        path.display(),
        lost.join("\n  ")
    );
}

#[test]
fn the_check_sees_a_changed_signature_a_renumbered_status_and_a_removal() {
    let header = std::fs::read_to_string(root().join("include/adgan.h")).unwrap();
    let base = declarations(&header);
    let changed = [
        // a parameter's type
        header.replacen("uint64_t iteration", "uint32_t iteration", 1),
        // a status number
        header.replacen("ADGAN_STATUS_TORCH = 7", "ADGAN_STATUS_TORCH = 8", 1),
        // a function gone
        header.replacen("void adgan_model_free(", "void adgan_model_release(", 1),
        // a constant
        header.replacen("ADGAN_MAX_DIM (1 << 20)", "ADGAN_MAX_DIM (1 << 16)", 1),
    ];
    for (i, h) in changed.iter().enumerate() {
        assert_ne!(h, &header, "case {i} edits the header");
        let now = declarations(h);
        assert!(
            base.iter().any(|d| !now.contains(d)),
            "case {i}: the change is not seen"
        );
    }
    // Adding a function or a status keeps every old declaration.
    let added = header
        .replacen(
            "ADGAN_STATUS_TORCH = 7,",
            "ADGAN_STATUS_TORCH = 7,\n    ADGAN_STATUS_NEW = 8,",
            1,
        )
        .replacen(
            "#ifdef __cplusplus\nextern \"C\" {",
            "#ifdef __cplusplus\nextern \"C\" {\n#endif\nint32_t adgan_new_thing(void);\n#ifdef __cplusplus",
            1,
        );
    let now = declarations(&added);
    assert!(base.iter().all(|d| now.contains(d)));
    let new: Vec<_> = now.difference(&base).collect();
    assert_eq!(new.len(), 2, "{new:?}");
    // What the baseline holds: every function and every status.
    let functions = base
        .iter()
        .filter(|d| d.contains("adgan_") && d.contains('('));
    assert!(functions.count() >= 52);
    assert!(base.contains("enum AdganStatus: ADGAN_STATUS_TORCH = 7"));
}
