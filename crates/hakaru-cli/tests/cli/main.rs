//! CLI tests: one integration-test binary, one module per command.

mod models;
mod pull;
mod template;
