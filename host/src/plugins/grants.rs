//! What the config grants a plugin: a set of capabilities, checked at every host call and
//! named when one is missing.

use std::collections::BTreeSet;

use super::manifest::Capability;

/// The capabilities config grants a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<Capability>);

impl Grants {
    pub fn parse(names: &[String]) -> Result<Grants, String> {
        names
            .iter()
            .map(|n| {
                Capability::parse(n).ok_or_else(|| format!("unknown capability {n:?} in grants"))
            })
            .collect::<Result<_, _>>()
            .map(Grants)
    }

    pub fn of(caps: &[Capability]) -> Grants {
        Grants(caps.iter().copied().collect())
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.0.contains(&cap)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|c| c.as_str()).collect()
    }
}
