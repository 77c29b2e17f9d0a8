//! Builds the command plugins in `plugins/` to wasm32-wasip2 components, so the built-ins
//! can be embedded in the binary and the test plugins are ready for the end-to-end suite.
//! They are built once per build into `plugins/` of the build's target directory, in release mode (small and fast),
//! by a nested cargo with its own target directory (no lock shared with this build).
//! The plugins that also build as native libraries (`export_native_plugin!`) are built a
//! second time for the host, for the native-plugin tests.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("workspace root").to_path_buf();
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("plugin-api").display()
    );

    // The target directory of the build that runs this script — this checkout's own, or
    // the one of a plugin author's crate that depends on `slashd` (for `testkit`), never
    // the other's: OUT_DIR is <target>/<profile>/build/slashd-<hash>/out.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| out_dir.ancestors().nth(4).map(PathBuf::from))
        .unwrap_or_else(|| root.join("target"))
        .join("plugins");
    let wasm = [
        "build",
        "--release",
        "--workspace",
        "--exclude",
        "badabi",
        "--target",
        TARGET,
    ];
    run_cargo(&plugins, &target_dir, &wasm);
    let native = [
        "build",
        "--release",
        "-p",
        "tally",
        "-p",
        "hello",
        "-p",
        "hostile",
        "-p",
        "liar",
        "-p",
        "badabi",
    ];
    run_cargo(&plugins, &target_dir, &native);

    let wasm_dir = target_dir.join(TARGET).join("release");
    println!(
        "cargo:rustc-env=BUILT_PLUGIN_WASM_DIR={}",
        wasm_dir.display()
    );
    let native_dir = target_dir.join("release");
    println!(
        "cargo:rustc-env=BUILT_PLUGIN_NATIVE_DIR={}",
        native_dir.display()
    );
}

fn run_cargo(plugins: &std::path::Path, target_dir: &std::path::Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings (profile, flags, clippy as the compiler) are not the
    // plugins' business.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let outer = (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
            || matches!(
                key.as_str(),
                "RUSTFLAGS" | "RUSTC_WORKSPACE_WRAPPER" | "CLIPPY_ARGS" | "RUSTDOCFLAGS"
            );
        if outer {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().expect("cannot run cargo to build the plugins");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("may not be installed") || stderr.contains("can't find crate for `core`")
        {
            panic!("the {TARGET} target is missing: run `rustup target add {TARGET}`\n{stderr}");
        }
        panic!("building the plugins failed:\n{stderr}");
    }
}
