//! `slashd plugin new NAME --lang rust|python|js`: a plugin project from the template of its
//! language, which builds where it is written. The templates are the repo's own
//! (`plugins/template` for Rust, `sdk/*/template` for the others), embedded in the binary;
//! only the plugin's name and where its SDK lives are filled in.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// A file of a template: its path in the project, and its text.
struct File {
    path: &'static str,
    text: String,
}

/// The checkout this binary was built from; its SDKs are the default.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

pub fn write(
    name: &str,
    lang: Lang,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<()> {
    valid_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_some()) {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = sdk_dir(lang, sdk)?;
    let files = match lang {
        Lang::Rust => rust(name, &sdk),
        Lang::Python => python(name, &sdk),
        Lang::Js => js(name, &sdk)?,
    };
    for file in &files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("wrote {} ({} files)", dir.display(), files.len());
    println!("next: see {}", dir.join("README.md").display());
    Ok(())
}

/// Plugin names are what commands are called: lowercase letters, digits and `-`, starting
/// with a letter, at most 32 characters.
fn valid_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("a plugin name is 1–32 lowercase letters, digits and '-', starting with a letter");
    }
    Ok(())
}

/// The SDK of `lang` in the given checkout, or in the one this binary was built from.
fn sdk_dir(lang: Lang, given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let within = match lang {
        Lang::Rust => "plugin-api",
        Lang::Python => "sdk/python",
        Lang::Js => "sdk/js",
    };
    let root = given.unwrap_or_else(|| PathBuf::from(BUILT_FROM));
    let sdk = root.join(within);
    if !sdk.is_dir() {
        bail!(
            "no SDK at {}: pass --sdk with the path of a slashd checkout",
            sdk.display()
        );
    }
    sdk.canonicalize()
        .with_context(|| format!("cannot resolve {}", sdk.display()))
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

fn rust(name: &str, sdk: &Path) -> Vec<File> {
    let manifest = include_str!("../../../plugins/template/Cargo.toml")
        .replace("name = \"hello\"", &format!("name = \"{name}\""))
        .replace(
            "path = \"../../plugin-api\"",
            &format!("path = {:?}", path_text(sdk)),
        );
    let manifest = format!(
        "{manifest}\n# A workspace of its own, wherever it is written.\n[workspace]\n\n\
         [profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\nstrip = \"debuginfo\"\npanic = \"unwind\"\n"
    );
    let source = include_str!("../../../plugins/template/src/lib.rs")
        .replace(
            "Manifest::new(\"hello\"",
            &format!("Manifest::new({name:?}"),
        )
        .replace("Command::new(\"hello\"", &format!("Command::new({name:?}"));
    let readme = include_str!("../../../plugins/template/README.md")
        .replace("hello.wasm", &format!("{}.wasm", name.replace('-', "_")))
        .replace("/hello", &format!("/{name}"));
    vec![
        File {
            path: "Cargo.toml",
            text: manifest,
        },
        File {
            path: "src/lib.rs",
            text: source,
        },
        File {
            path: "README.md",
            text: readme,
        },
        File {
            path: ".gitignore",
            text: "/target\n".into(),
        },
    ]
}

/// The template's own name for its plugin and command, in quotes.
const TEMPLATE_NAME: &str = "\"hello\"";

fn named(text: &str, name: &str) -> String {
    text.replace(TEMPLATE_NAME, &format!("{name:?}"))
}

fn readme(text: &str, name: &str) -> String {
    text.replace("hello.wasm", &format!("{name}.wasm"))
        .replace("/hello", &format!("/{name}"))
}

fn python(name: &str, sdk: &Path) -> Vec<File> {
    vec![
        File {
            path: "app.py",
            text: named(include_str!("../../../sdk/python/template/app.py"), name),
        },
        File {
            // The SDK from the checkout, by absolute path: pip installs it (and the
            // componentize-py it depends on) into the project's venv.
            path: "requirements.txt",
            text: format!(
                "# slashd-plugin, the Python SDK, from a slashd checkout\n{}\n",
                path_text(sdk)
            ),
        },
        File {
            path: "README.md",
            text: readme(include_str!("../../../sdk/python/template/README.md"), name),
        },
        File {
            path: ".gitignore",
            text: "/.venv\n/*.wasm\n__pycache__/\n".into(),
        },
    ]
}

fn js(name: &str, sdk: &Path) -> anyhow::Result<Vec<File>> {
    let package = serde_json::json!({
        "name": name,
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "scripts": { "build": format!("slashd-plugin build app.js -o {name}.wasm") },
        "dependencies": { "slashd-plugin": format!("file:{}", path_text(sdk)) },
    });
    Ok(vec![
        File {
            path: "app.js",
            text: named(include_str!("../../../sdk/js/template/app.js"), name),
        },
        File {
            path: "package.json",
            text: serde_json::to_string_pretty(&package)? + "\n",
        },
        File {
            // Install the SDK from its folder as a package, with its own dependencies
            // (componentize-js, esbuild), rather than as a bare link to the checkout.
            path: ".npmrc",
            text: "install-links=true\n".into(),
        },
        File {
            path: "README.md",
            text: readme(include_str!("../../../sdk/js/template/README.md"), name),
        },
        File {
            path: ".gitignore",
            text: "/node_modules\n/*.wasm\n".into(),
        },
    ])
}
