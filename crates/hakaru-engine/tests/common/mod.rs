//! Helpers shared by the engine's integration tests.

use std::path::Path;

use candle_core::quantized::{gguf_file, QTensor};

/// Write `tensors` as a GGUF file at `path` with `like`'s metadata, its `general.file_type`
/// set to `file_type` (llama.cpp's code: 0 F32, 1 F16, 32 BF16).
pub fn write_gguf(
    path: &Path,
    like: &gguf_file::Content,
    tensors: &[(String, QTensor)],
    file_type: u32,
) {
    let file_type = gguf_file::Value::U32(file_type);
    let metadata: Vec<(&str, &gguf_file::Value)> = like
        .metadata
        .iter()
        .map(|(k, v)| match k.as_str() {
            "general.file_type" => (k.as_str(), &file_type),
            _ => (k.as_str(), v),
        })
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
    gguf_file::write(&mut std::fs::File::create(path).unwrap(), &metadata, &refs).unwrap();
}
