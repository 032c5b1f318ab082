//! `--device cpu|cuda[:N]` and `--threads N`.

use candle_core::Device;

use crate::error::{Error, Result};

/// Parse a device name. `cuda` means `cuda:0`.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim().to_ascii_lowercase();
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.as_str() {
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:") {
            Some(n) => n.parse::<usize>().map_err(|_| {
                Error::Other(format!(
                    "device `{s}`: the GPU number after `cuda:` must be an integer, e.g. cuda:0"
                ))
            })?,
            None => {
                return Err(Error::Other(format!(
                    "device `{s}` is not known; use cpu, cuda or cuda:N"
                )))
            }
        },
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Resource(format!(
            "device `{s}`: this hakaru was built without CUDA support; rebuild with `cargo build --release --features cuda` (see README)"
        )));
    }
    let device = Device::new_cuda(ordinal).map_err(|e| {
        // candle appends a backtrace when RUST_BACKTRACE is set; the first line is the message.
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or_default().to_string();
        Error::Resource(format!("device `{s}`: cannot open the GPU: {msg}"))
    })?;
    #[cfg(feature = "cuda")]
    if let Err(e) = keep_freed_memory(&device) {
        eprintln!("warning: device `{s}`: GPU memory freed during a pass goes back to the driver at every synchronization ({e}): steps are slower, and the peak GPU memory reads low");
    }
    Ok(device)
}

/// Keep the GPU memory the process frees reserved for it, as PyTorch's caching allocator does:
/// candle allocates from the device's default stream-ordered pool, whose release threshold is 0,
/// so at every synchronization (each read of the logits) the driver unmaps what was freed, and
/// the next pass maps it again. With no threshold a pass reuses its memory, and NVML's figure for
/// the process after a test is the process's peak so far (as `peak_rss_bytes` is for the host).
#[cfg(feature = "cuda")]
fn keep_freed_memory(device: &Device) -> std::result::Result<(), String> {
    use candle_core::cuda_backend::cudarc::driver::{result, sys};
    let Device::Cuda(d) = device else {
        return Ok(());
    };
    let dev = d.cuda_stream().context().cu_device();
    let mut threshold = u64::MAX;
    // SAFETY: `dev` comes from an open context; the attribute takes a u64 by pointer.
    unsafe {
        let pool = result::device::get_default_mem_pool(dev).map_err(|e| e.to_string())?;
        result::mem_pool::set_attribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
        .map_err(|e| e.to_string())
    }
}

/// The GPU's UUID as NVML and `nvidia-smi` write it (`GPU-8-4-4-4-12` hex digits), so that
/// they name the same GPU as CUDA does: CUDA numbers GPUs fastest first and within
/// `CUDA_VISIBLE_DEVICES`, NVML and `nvidia-smi` by PCI bus over every GPU. `None` on the CPU.
pub fn gpu_uuid(device: &Device) -> Option<String> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let u = d.cuda_stream().context().uuid().ok()?;
        return Some(uuid_text(&u.bytes.map(|b| b as u8)));
    }
    let _ = device;
    None
}

/// `GPU-` and the 16 bytes in hex, grouped 8-4-4-4-12.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn uuid_text(b: &[u8; 16]) -> String {
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

/// A short name for provenance: `cpu` or `cuda:N`.
pub fn device_label(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Limit CPU threads. Must run before the first tensor operation: candle and gemm size their
/// thread pools from `RAYON_NUM_THREADS` on first use.
pub fn set_threads(n: usize) {
    if n > 0 {
        // SAFETY: called at start-up, before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

/// Fix the CPU thread count for the process: `RAYON_NUM_THREADS` when it holds a count, else
/// candle's default (the physical cores), written into it. Two reasons: candle 0.11.1's
/// `get_num_threads`, which candle calls in its parallel operations, counts physical cores by
/// reading and parsing /proc/cpuinfo on every call when the variable is unset (it showed in
/// decoding profiles); and provenance reads the count from the variable, so it records the one
/// that runs rather than the logical CPUs. `--threads` overrides it later ([`set_threads`]).
/// Call at start-up, before other threads exist.
pub fn settle_threads() {
    let set = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .is_some_and(|n| n > 0);
    if !set {
        set_threads(candle_core::utils::get_num_threads());
    }
}

/// Keep freed memory in the process. glibc serves blocks of 128 KiB and more (a threshold that
/// rises with use, to 32 MiB at most) with fresh mappings and returns the free top of its heap to
/// the system once more than about twice that is free; a forward pass frees and allocates
/// tensors of several MiB in every layer, so each was faulted in and zeroed by the kernel again.
/// Measured on Qwen2.5-0.5B at Q8_0 (benches/README.md): prompt processing 164 → 210 tokens/s.
/// The cost is that up to 1 GiB of freed memory stays mapped. Call at start-up, before threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_uuids_are_written_as_nvml_writes_them() {
        let b: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_text(&b), "GPU-00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(gpu_uuid(&Device::Cpu), None);
    }

    #[test]
    fn device_names() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("CPU").unwrap().is_cpu());
        let e = parse_device("tpu").unwrap_err().to_string();
        assert!(e.contains("use cpu, cuda or cuda:N"), "{e}");
        let e = parse_device("cuda:x").unwrap_err().to_string();
        assert!(e.contains("must be an integer"), "{e}");
        if !candle_core::utils::cuda_is_available() {
            let e = parse_device("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
