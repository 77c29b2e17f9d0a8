//! slashd: a chat server whose slash commands are sandboxed plugins.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

pub mod allow_list;
pub mod app;
pub mod assistant;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod limits;
pub mod listener;
pub mod log_text;
pub mod metrics;
pub mod plugins;
pub mod protocol;
pub mod realtime;
pub mod retention;
pub mod state;
pub mod store;
pub mod time_fmt;
