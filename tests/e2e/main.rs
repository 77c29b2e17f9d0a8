//! End-to-end tests: the real `slashd` binary, real HTTP and WebSocket clients, real SQLite
//! and PostgreSQL. Most tests run once per backend (`on_both_backends!`).

mod harness;

mod auth;
mod builtins;
mod cli;
mod commands;
mod realtime;
mod sessions;
mod testkit;
