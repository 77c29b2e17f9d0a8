//! End-to-end tests: the real `slashd` binary, real HTTP and WebSocket clients, real SQLite
//! and PostgreSQL. Most tests run once per backend (`on_both_backends!`).

mod harness;
mod support;

mod assistant;
mod asyncapi;
mod auth;
mod authoring;
mod builtins;
mod cli;
mod clients;
mod cluster;
mod commands;
mod db_copy;
mod hardening;
mod interactive;
mod logs;
mod metrics;
mod native;
mod openapi;
mod plugin_api;
mod realtime;
mod sessions;
mod testkit;
mod web;
