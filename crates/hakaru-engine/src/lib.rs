//! hakaru-engine: everything that touches candle, hf-hub and tokenizers.
//!
//! Model references are resolved to files (`model_ref`, `hub`), files are turned into a runnable
//! model (`config`, `load`, `model`), and the model is driven through generation and scoring
//! (`generate`); a model served elsewhere is driven through an OpenAI-compatible endpoint
//! (`endpoint`). The engine never prints: progress goes through callbacks and `tracing`.

pub mod backend;
pub mod bench;
pub mod config;
pub mod device;
pub mod endpoint;
pub mod error;
pub mod generate;
pub mod gguf_tokenizer;
pub mod hub;
pub mod load;
pub mod model;
pub mod model_ref;
pub mod open;
pub mod pages;
pub mod registry;
pub mod template;
pub mod tokenizer;

pub use candle_core::{DType, Device};
pub use error::{Error, Result};
