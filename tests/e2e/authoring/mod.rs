//! A plugin author's loop with the shipped binary: `slashd plugin new` for each language,
//! the template built with that language's own toolchain, `plugin check`, and `plugin run`
//! — one invocation in the real runtime, with the server's grants, limits and refusals.

mod run;
mod templates;

use std::process::{Command, Output};

use crate::harness::{BIN, SHARED_XDG_CACHE_HOME};

/// `slashd ARGS…` in `dir`, with the plugin log visible.
pub fn slashd(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SLASHD_LOG")
        .env("XDG_CACHE_HOME", SHARED_XDG_CACHE_HOME)
        .output()
        .expect("run slashd")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `plugin run FILE LINE ARGS… --json`: the JSON it printed, and whether it exited 0.
pub fn run_json(
    dir: &std::path::Path,
    file: &str,
    line: &str,
    args: &[&str],
) -> (bool, serde_json::Value) {
    let mut all = vec!["plugin", "run", file, line, "--json"];
    all.extend_from_slice(args);
    let out = slashd(dir, &all);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(&out), stderr(&out)));
    (out.status.success(), json)
}
