//! From a reference string to a running model: parse (registry names included), resolve the
//! files (hub cache, local, synthetic), check that it fits in memory, load.

use std::path::Path;

use candle_core::DType;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::hub::{self, ResolveOptions, ResolvedModel, WeightFormat};
use crate::load::{self, LoadOptions, LoadedModel};
use crate::model_ref::ModelRef;
use crate::registry::{self, Precision, Registry};

pub struct OpenedModel {
    pub model_ref: ModelRef,
    pub resolved: ResolvedModel,
    pub loaded: LoadedModel,
}

impl OpenedModel {
    pub fn config(&self) -> &ModelConfig {
        &self.loaded.transformer.config
    }
}

/// The shape a `synthetic:` reference names: a registry entry or a config.json path.
pub fn synthetic_config(spec: &str, registry: &Registry) -> Result<ModelConfig> {
    if let Some(e) = registry.get(spec) {
        return Ok(e.config());
    }
    let p = Path::new(spec);
    if p.exists() {
        return ModelConfig::from_file(p);
    }
    Err(Error::reference(
        format!("synthetic:{spec}"),
        "not a registry name (see `hakaru models`) nor an existing config.json path",
    ))
}

fn precision_of(dtype: DType) -> Precision {
    match dtype {
        DType::BF16 => Precision::Bf16,
        DType::F16 => Precision::F16,
        _ => Precision::F32,
    }
}

/// Refuse before loading what cannot fit in this machine's memory (CPU only: a GPU's memory is
/// checked by the allocator when the weights are placed).
fn check_fits(label: &str, cfg: &ModelConfig, p: Precision, opts: &LoadOptions) -> Result<()> {
    if opts.device.is_cpu() {
        registry::check_fits(label, cfg, p, registry::available_memory())?;
    }
    Ok(())
}

/// Resolve and load `reference`.
pub fn open(reference: &str, resolve: &ResolveOptions, opts: &LoadOptions) -> Result<OpenedModel> {
    let registry = Registry::builtin();
    let model_ref = registry.parse_ref(reference)?;
    let resolved = hub::resolve(&model_ref, resolve)?;
    let loaded = match (&model_ref, resolved.format) {
        (ModelRef::Synthetic(spec), _) => {
            let cfg = synthetic_config(spec, registry)?;
            let p = opts
                .quant
                .unwrap_or(precision_of(opts.dtype.unwrap_or(DType::F32)));
            check_fits(reference, &cfg, p, opts)?;
            load::load_synthetic(&cfg, opts)?
        }
        (_, WeightFormat::Gguf) => {
            let path = resolved
                .gguf_path()
                .ok_or_else(|| Error::reference(reference, "resolved to no .gguf file"))?
                .to_path_buf();
            let (cfg, _, _, label) = load::gguf_config(&path)?;
            if let Ok(p) = label.parse::<Precision>() {
                check_fits(reference, &cfg, p, opts)?;
            }
            let tok_dir = resolved
                .tokenizer_path()
                .and_then(|p| p.parent())
                .map(Path::to_path_buf);
            load::load_gguf(&path, tok_dir.as_deref(), opts)?
        }
        _ => {
            let dir = resolved
                .dir
                .clone()
                .ok_or_else(|| Error::reference(reference, "resolved to no model directory"))?;
            let cfg_path = dir.join("config.json");
            if cfg_path.exists() {
                let cfg = ModelConfig::from_file(&cfg_path)?;
                let dtype = opts
                    .dtype
                    .or_else(|| cfg.torch_dtype.as_deref().and_then(load::parse_dtype));
                check_fits(
                    reference,
                    &cfg,
                    precision_of(dtype.unwrap_or(DType::F32)),
                    opts,
                )?;
            }
            load::load_dir(&dir, opts)?
        }
    };
    Ok(OpenedModel {
        model_ref,
        resolved,
        loaded,
    })
}
