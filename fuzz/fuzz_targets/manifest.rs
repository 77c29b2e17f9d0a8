//! The plugin manifest decoders (`slashd::plugins::manifest`, `slashd::plugins::wit`):
//! - the API-version reader (`wit::api_version`: the versioned imports and the custom
//!   section), on any bytes and on a component that carries the section with any contents;
//! - the JSON manifest a native plugin returns (`manifest::from_json`), then
//!   `manifest::validate`, the check every plugin's manifest passes before it is enabled.
//!
//! Properties: nothing panics; the reader finds exactly the section's contents; a manifest
//! serialized by the SDK decodes to the same manifest; and `validate` accepts exactly the
//! manifests the rules in docs/plugins.md allow (an independent statement of them below).
#![no_main]

use std::collections::HashSet;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use slashd::plugins::manifest::{
    from_json, valid_command_name, validate, Manifest, API_VERSION_SECTION,
};
use slashd::plugins::wit::{api_version, ApiVersion};
use slashd_plugin_api as sdk;

/// The first byte picks what the rest is (so seeds are plain files: `\x00` + a `.wasm`,
/// `\x02` + JSON).
#[derive(Debug)]
enum Input {
    /// Any bytes as a plugin file.
    Wasm(Vec<u8>),
    /// A component or module carrying the version section with these contents.
    Section { component: bool, data: Vec<u8> },
    /// Any bytes as a native plugin's JSON manifest.
    Json(Vec<u8>),
    /// A manifest as the SDK writes it.
    Sdk(SdkManifest),
}

impl Input {
    fn from_bytes(data: &[u8]) -> Option<Input> {
        let (&first, rest) = data.split_first()?;
        Some(match first % 4 {
            0 => Input::Wasm(rest.to_vec()),
            1 => Input::Section {
                component: first & 0x10 == 0,
                data: rest.to_vec(),
            },
            2 => Input::Json(rest.to_vec()),
            _ => Input::Sdk(Unstructured::new(rest).arbitrary().ok()?),
        })
    }
}

#[derive(Debug, Arbitrary)]
struct SdkManifest {
    name: String,
    version: String,
    commands: Vec<(String, Vec<String>, String, String, u8)>,
    capabilities: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    if let Some(input) = Input::from_bytes(data) {
        run(input);
    }
});

fn run(input: Input) {
    match input {
        Input::Wasm(bytes) => {
            // Any answer but a panic; a version is always one this host speaks.
            if let Ok(v) = api_version(&bytes) {
                assert!(ApiVersion::ALL.contains(&v));
            }
        }
        Input::Section { component, data } => {
            // A file with no slashd imports is read by its section alone.
            let wasm = with_section(component, &data);
            let want = String::from_utf8_lossy(&data).into_owned();
            let supported = ApiVersion::ALL.iter().any(|v| v.as_str() == want);
            match api_version(&wasm) {
                Ok(v) => assert_eq!(v.as_str(), want),
                Err(e) => assert!(!supported, "{want:?}: {e}"),
            }
        }
        Input::Json(bytes) => {
            if let Ok(manifest) = from_json(&bytes) {
                assert_eq!(
                    validate(&manifest).is_ok(),
                    allowed(&manifest),
                    "{manifest:?}"
                );
            }
        }
        Input::Sdk(m) => {
            let sdk = to_sdk(m);
            let json = serde_json::to_vec(&sdk).unwrap();
            let manifest = from_json(&json).expect("the SDK's manifest decodes");
            assert_eq!(manifest, sdk);
            assert_eq!(
                validate(&manifest).is_ok(),
                allowed(&manifest),
                "{manifest:?}"
            );
        }
    }
}

/// The manifest rules, stated independently of `manifest::validate`.
fn allowed(m: &Manifest) -> bool {
    let mut names = HashSet::new();
    let names_ok = m.commands.iter().all(|c| {
        std::iter::once(&c.name)
            .chain(&c.aliases)
            .all(|n| valid_command_name(n) && names.insert(n.clone()))
    });
    let texts_ok = m
        .commands
        .iter()
        .all(|c| c.summary.chars().count() <= 200 && c.usage.chars().count() <= 200);
    !m.name.is_empty()
        && m.name.len() <= 64
        && m.version.len() <= 64
        && (1..=64).contains(&m.commands.len())
        && names_ok
        && texts_ok
        // Typed arguments and confirmation are refused until the host runs them.
        && m.commands.iter().all(|c| c.args.is_none() && c.confirm.is_none())
}

fn to_sdk(m: SdkManifest) -> sdk::Manifest {
    const ROLES: [sdk::Role; 3] = [sdk::Role::Viewer, sdk::Role::Analyst, sdk::Role::Admin];
    const CAPS: [sdk::Capability; 9] = sdk::Capability::ALL;
    sdk::Manifest {
        name: m.name,
        version: m.version,
        commands: m
            .commands
            .into_iter()
            .map(|(name, aliases, summary, usage, role)| sdk::Command {
                name,
                aliases,
                summary,
                usage,
                min_role: ROLES[usize::from(role) % ROLES.len()],
                args: None,
                confirm: None,
            })
            .collect(),
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| CAPS[usize::from(c) % CAPS.len()])
            .collect(),
    }
}

/// A minimal component (or core module) whose only section is the API-version section.
fn with_section(component: bool, data: &[u8]) -> Vec<u8> {
    let mut wasm = b"\0asm".to_vec();
    wasm.extend_from_slice(if component {
        &[0x0d, 0x00, 0x01, 0x00]
    } else {
        &[0x01, 0x00, 0x00, 0x00]
    });
    let name = API_VERSION_SECTION.as_bytes();
    let mut body = Vec::new();
    leb128(&mut body, name.len());
    body.extend_from_slice(name);
    body.extend_from_slice(data);
    wasm.push(0); // custom section
    leb128(&mut wasm, body.len());
    wasm.extend_from_slice(&body);
    wasm
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
