//! Completion: how a half-typed line may go on. The host answers from what it knows first —
//! command names the caller may run, option names, `choice` and `boolean` values, the
//! session's people for a `user`, the caller's own sessions for a `session` — and asks the
//! plugin's `complete` export only for an argument that declares `completes` (a fresh
//! instance, `commands.complete_timeout`, at most 25 items). A caller never sees a command
//! they may not run, a user they could not name, or a session they cannot see.

use slashd_plugin_api::{ArgKind, ArgSpec, Completion, NamedValue};

use super::{CommandError, Commands};
use crate::auth::Principal;
use crate::plugins::call::MAX_COMPLETIONS;
use crate::plugins::{may_run, CallContext, CompleteInput, Route};
use crate::protocol::args::{self, Bound, Cursor, Target};
use crate::protocol::command_line::split_command;
use crate::store::SessionStatus;
use crate::time_fmt::rfc3339;

/// Session people read for a `user` argument.
const MAX_PEOPLE: i64 = 200;

/// Where the line is being typed.
pub struct Place {
    pub session_id: String,
    pub connection_id: String,
    /// Unix milliseconds.
    pub connected_at: i64,
}

/// The answer: `items` replace the line from character (not byte) `from` on.
#[derive(Debug, Default)]
pub struct Completions {
    pub items: Vec<Completion>,
    pub from: usize,
}

impl Commands {
    /// Completions for `line` (the composer's text so far), for `caller`, in a session the
    /// caller has joined.
    pub async fn complete(
        &self,
        caller: &Principal,
        place: &Place,
        line: &str,
    ) -> Result<Completions, CommandError> {
        if self.complete_limiter.try_take(&caller.id).is_err() {
            self.chat.metrics.limit_hit("completions_per_user");
            return Err(CommandError::RateLimited);
        }
        let Some((name, raw)) = split_command(line) else {
            return Ok(Completions::default());
        };
        let registry = self.plugins.registry();
        if !line[1..].contains(char::is_whitespace) {
            let items = registry
                .visible(caller.role)
                .into_iter()
                .filter(|c| c.name.starts_with(&name))
                .take(MAX_COMPLETIONS)
                .map(|c| Completion {
                    value: c.name,
                    label: Some(c.summary),
                })
                .collect();
            return Ok(Completions { items, from: 1 });
        }
        let Some(route) = registry.route(&name).filter(|r| may_run(caller.role, r)) else {
            return Ok(Completions::default());
        };
        let Some(specs) = &route.command.args else {
            return Ok(Completions::default());
        };
        let raw_start = line.len() - raw.len();
        let cursor = args::cursor(specs, raw);
        let from = line[..raw_start + cursor.from].chars().count();
        let items = match &cursor.target {
            Target::Nothing => Vec::new(),
            Target::Options(options) => options
                .iter()
                .map(|s| format!("--{}", s.name))
                .zip(options.iter())
                .filter(|(flag, _)| flag.starts_with(&cursor.partial))
                .map(|(flag, s)| Completion {
                    value: flag,
                    label: Some(s.summary.clone()),
                })
                .collect(),
            Target::Value(spec) => {
                let mut items = self.known_values(caller, place, spec, &cursor).await?;
                if spec.completes {
                    let asked = self.ask_plugin(caller, place, route, spec, &cursor).await;
                    for item in asked {
                        if !items.iter().any(|i| i.value == item.value) {
                            items.push(item);
                        }
                    }
                }
                items
            }
        };
        let items = items
            .into_iter()
            .take(MAX_COMPLETIONS)
            .map(|mut c| {
                c.value = quote_word(&c.value);
                c
            })
            .collect();
        Ok(Completions { items, from })
    }

    /// What the host knows an argument's values may be.
    async fn known_values(
        &self,
        caller: &Principal,
        place: &Place,
        spec: &ArgSpec,
        cursor: &Cursor<'_>,
    ) -> Result<Vec<Completion>, CommandError> {
        let partial = cursor.partial.as_str();
        let plain = |values: &[&str]| {
            values
                .iter()
                .filter(|v| v.starts_with(partial))
                .map(|v| Completion {
                    value: v.to_string(),
                    label: None,
                })
                .collect()
        };
        Ok(match &spec.kind {
            ArgKind::Choice(choices) => {
                plain(&choices.iter().map(String::as_str).collect::<Vec<_>>())
            }
            ArgKind::Boolean => plain(&["true", "false"]),
            ArgKind::User => {
                let wanted = partial.strip_prefix('@').unwrap_or(partial).to_lowercase();
                self.chat
                    .store
                    .session_people(&place.session_id, MAX_PEOPLE)
                    .await
                    .map_err(crate::chat::ChatError::Db)?
                    .into_iter()
                    .filter(|u| u.name.to_lowercase().starts_with(&wanted))
                    .map(|u| Completion {
                        value: u.name,
                        label: Some(u.role.to_string()),
                    })
                    .collect()
            }
            ArgKind::Session => {
                let wanted = partial.to_lowercase();
                let (sessions, _) = self
                    .chat
                    .store
                    .list_sessions(&caller.id, Some(SessionStatus::Active), 50, 0)
                    .await
                    .map_err(crate::chat::ChatError::Db)?;
                sessions
                    .into_iter()
                    .map(|s| s.session)
                    .filter(|s| {
                        s.id.starts_with(&wanted) || s.title.to_lowercase().contains(&wanted)
                    })
                    .map(|s| Completion {
                        value: s.id,
                        label: Some(s.title),
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }

    /// The plugin's suggestions; a plugin that fails or is late is left out (and logged).
    async fn ask_plugin(
        &self,
        caller: &Principal,
        place: &Place,
        route: &Route,
        spec: &ArgSpec,
        cursor: &Cursor<'_>,
    ) -> Vec<Completion> {
        let session_title = match self.chat.store.session(&place.session_id).await {
            Ok(Some(s)) => s.title,
            _ => String::new(),
        };
        // The values typed so far, as far as they check; users and sessions are not
        // resolved for a completion.
        let values = cursor
            .given
            .iter()
            .filter_map(|(spec, text)| match args::check(spec, text) {
                Ok(Bound::Value(value)) => Some(NamedValue {
                    name: spec.name.clone(),
                    value,
                }),
                _ => None,
            })
            .collect();
        let ctx = CallContext {
            user_id: caller.id.clone(),
            user_name: caller.name.clone(),
            role: caller.role,
            session_id: place.session_id.clone(),
            session_title,
            connection_id: place.connection_id.clone(),
            connected_at: rfc3339(place.connected_at),
            invocation_id: String::new(),
            job: None,
        };
        let input = CompleteInput {
            command: route.command.name.clone(),
            arg: spec.name.clone(),
            partial: cursor.partial.clone(),
            values,
        };
        match self
            .plugins
            .complete(route, ctx, input, self.complete_timeout)
            .await
        {
            Ok(items) => items,
            Err(e) => {
                tracing::debug!(
                    target: "slashd::plugin",
                    plugin = route.plugin.name.as_str(),
                    command = route.command.name.as_str(),
                    error = %e,
                    "complete() gave nothing"
                );
                Vec::new()
            }
        }
    }
}

/// A value as it must be typed: quoted when it holds spaces or quotes.
fn quote_word(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::protocol::command_line::split_args;

    #[test]
    fn quoted_values_split_back() {
        for value in [
            "api",
            "two words",
            "it's",
            "a\"b",
            "back\\slash",
            "$HOME",
            "",
        ] {
            let quoted = super::quote_word(value);
            assert_eq!(
                split_args(&quoted),
                Some(vec![value.to_string()]),
                "{quoted}"
            );
        }
        assert_eq!(super::quote_word("api"), "api");
    }
}
