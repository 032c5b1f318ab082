pub mod bench;
pub mod generate;
pub mod logits;
pub mod models;
pub mod pull;
pub mod report;
pub mod rescore;
pub mod run;
pub mod score;
pub mod suites;
pub mod template;
pub mod validate;

use std::sync::Arc;

use anyhow::{Context, Result};
use hakaru_engine::backend::{Backend, CandleBackend};
use hakaru_engine::endpoint::{EndpointBackend, EndpointOptions, EndpointRef};
use hakaru_engine::load::LoadOptions;
use hakaru_engine::open::OpenedModel;
use hakaru_engine::registry::Precision;

/// Options shared by every command that loads a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: org/name[@revision], org/name[@revision]:FILE.gguf, a registry name, a directory,
    /// a .gguf file, synthetic:<registry-name|config.json>, or an OpenAI-compatible endpoint
    /// http[s]://host:port/v1#served-model (API key from HAKARU_API_KEY or OPENAI_API_KEY)
    #[arg(long, short = 'm')]
    pub model: String,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// How to load a model: device, precision, threads, hub access.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoadArgs {
    /// cpu, cuda or cuda:N [default: cpu]
    #[arg(long)]
    pub device: Option<String>,
    /// Compute dtype for safetensors and synthetic models: f32, bf16 or f16 [default: as stored]
    #[arg(long)]
    pub dtype: Option<String>,
    /// Quantize a synthetic model: Q8_0, Q4_0, Q4_K_M, Q5_K_M or Q6_K
    #[arg(long)]
    pub quant: Option<String>,
    /// CPU threads [default: all cores]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Read only the local hub cache (same as HF_HUB_OFFLINE=1)
    #[arg(long)]
    pub offline: bool,
}

impl ModelArgs {
    pub fn load_options(&self) -> Result<LoadOptions> {
        if let Some(n) = self.load.threads {
            hakaru_engine::device::set_threads(n);
        }
        let device =
            hakaru_engine::device::parse_device(self.load.device.as_deref().unwrap_or("cpu"))?;
        let dtype = match &self.load.dtype {
            Some(d) => Some(
                hakaru_engine::load::parse_dtype(d)
                    .with_context(|| format!("--dtype `{d}` is not known; use f32, bf16 or f16"))?,
            ),
            None => None,
        };
        let quant = match &self.load.quant {
            Some(q) => {
                let p: Precision = q.parse()?;
                if !p.is_quantized() {
                    anyhow::bail!(
                        "--quant `{q}` is a float type; use --dtype for f32, bf16 or f16"
                    );
                }
                Some(p)
            }
            None => None,
        };
        Ok(LoadOptions {
            device,
            dtype,
            quant,
            seed: 0,
        })
    }

    /// True when the model is an OpenAI-compatible endpoint (`http[s]://…`).
    pub fn is_endpoint(&self) -> bool {
        EndpointRef::is_endpoint(&self.model)
    }

    /// The model to measure: loaded here, or reached at its endpoint.
    pub fn backend(&self) -> Result<Box<dyn Backend>> {
        if self.is_endpoint() {
            return Ok(Box::new(self.endpoint()?));
        }
        let opened = self.open()?;
        Ok(Box::new(CandleBackend::new(opened, self.model.clone())))
    }

    /// The endpoint the model is, refusing the flags that load a model here.
    pub fn endpoint(&self) -> Result<EndpointBackend> {
        let l = &self.load;
        for (given, flag) in [
            (l.device.is_some(), "--device"),
            (l.dtype.is_some(), "--dtype"),
            (l.quant.is_some(), "--quant"),
            (l.threads.is_some(), "--threads"),
            (l.offline, "--offline"),
        ] {
            if given {
                anyhow::bail!(
                    "{flag}: `{}` is an endpoint, whose model runs on its server as the server was started; leave {flag} out",
                    self.model
                );
            }
        }
        let r = EndpointRef::parse(&self.model)?;
        Ok(EndpointBackend::open(&r, &EndpointOptions::from_env(&r))?)
    }

    /// Resolve and load the model, with a download progress bar on a terminal.
    pub fn open(&self) -> Result<OpenedModel> {
        let opts = self.load_options()?;
        let mut resolve = hakaru_engine::hub::ResolveOptions::from_env();
        resolve.offline |= self.load.offline;
        resolve.progress = Some(Arc::new(pull::BarProgress::new()));
        Ok(hakaru_engine::open::open(&self.model, &resolve, &opts)?)
    }
}

/// Logs go to stderr; `RUST_LOG` selects the level (default: warnings, without hf-hub's per-retry
/// errors, which the final error message repeats). Colour only on a terminal and without NO_COLOR.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,hf_hub::retry=off"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
