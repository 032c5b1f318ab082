#!/usr/bin/env python3
"""Measure llama.cpp's CPU throughput on the same GGUF files hakaru loads.

`hakaru bench` reports prompt processing (pp) and generation (tg) throughput in
the manner of llama.cpp's `llama-bench`.  To compare the two on one machine,
both have to run the *same weights*.  This script writes a random-weight GGUF
in the exact shape of Qwen2.5-0.5B-Instruct (nothing is downloaded), quantizes
it with llama.cpp's own `llama-quantize`, and runs the real `llama-bench` on the
results.  Throughput depends only on shapes and tensor types, not on the weight
values, so the figures stand for the real model's.  The tokenizer is a toy
byte-level BPE (valid for llama.cpp and hakaru, but not Qwen's): anything that
tokenizes real text, such as hakaru's characters per token, is meaningless here.

Subcommands:

    make   write <dir>/qwen2.5-0.5b-shape-f16.gguf (F16, seeded uniform weights)
           and quantize it to <dir>/qwen2.5-0.5b-shape-{q8_0,q4_k_m}.gguf
    bench  run `llama-bench -t 2 -p 512 -n 128 -r N -o json` on each file,
           print a table (t/s mean +- sd) and write all results as JSON

Python deps: gguf, numpy (scripts/requirements.txt).  The llama.cpp tools are
built from the llama.cpp that llama-cpp-python vendors, e.g. for 0.3.36
(llama.cpp commit 0c1e57098):

    python3.11 -m venv /tmp/llcpp/venv
    /tmp/llcpp/venv/bin/pip install gguf==0.19.0 numpy cmake==4.4.4 ninja==1.13.2
    /tmp/llcpp/venv/bin/pip download --no-deps --no-binary llama-cpp-python \
        llama-cpp-python==0.3.36 -d /tmp/llcpp/src
    tar xzf /tmp/llcpp/src/llama_cpp_python-0.3.36.tar.gz -C /tmp/llcpp/src
    cd /tmp/llcpp/src/llama_cpp_python-0.3.36
    NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    /tmp/llcpp/venv/bin/cmake -S vendor/llama.cpp -B /tmp/llcpp/build -G Ninja \
        -DCMAKE_MAKE_PROGRAM=/tmp/llcpp/venv/bin/ninja -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON \
        -DCMAKE_C_FLAGS="$NOAMX" -DCMAKE_CXX_FLAGS="$NOAMX" \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
    nice -n 10 /tmp/llcpp/venv/bin/cmake --build /tmp/llcpp/build \
        --target llama-bench llama-quantize -j 2

The -mno-amx-* flags matter on virtual machines whose CPU reports AMX
(Sapphire Rapids and later) without the hypervisor enabling its tile state:
there `-march=native` builds ggml's AMX kernels and llama-bench dies with
SIGILL (`tilezero`) or a segfault in ggml_backend_amx_mul_mat.  Drop the flags
where AMX really works (llama.cpp then uses it for some quantized matmuls).

Then, from the repository root:

    /tmp/llcpp/venv/bin/python scripts/llama-cpp-bench.py make
    /tmp/llcpp/venv/bin/python scripts/llama-cpp-bench.py bench -r 3
    target/release/hakaru bench --model /tmp/llcpp/models/qwen2.5-0.5b-shape-q8_0.gguf

The tools are looked up in --bin-dir (default $LLAMA_CPP_BIN or
/tmp/llcpp/build/bin), then on PATH.  The .gguf files are large (about 1 GB for
F16) and belong outside the repository: never commit them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import numpy as np
    import gguf
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"error: {exc}.\nInstall the Python deps: python3 -m pip install -r scripts/requirements.txt")

DEFAULT_DIR = Path("/tmp/llcpp/models")
DEFAULT_BIN_DIR = Path(os.environ.get("LLAMA_CPP_BIN", "/tmp/llcpp/build/bin"))
STEM = "qwen2.5-0.5b-shape"
SEED = 20240919  # fixed: the weights, hence the files, are reproducible
AMPLITUDE = 0.05  # weights are uniform in [-AMPLITUDE, AMPLITUDE)

# Qwen2.5-0.5B-Instruct's config.json, in llama.cpp's terms.
ARCH = "qwen2"
HIDDEN = 896
INTERMEDIATE = 4864
LAYERS = 24
HEADS = 14
KV_HEADS = 2
HEAD_DIM = 64
VOCAB = 151936
ROPE_THETA = 1_000_000.0
RMS_EPS = 1e-6
CONTEXT = 32768

# Qwen's special tokens sit right after its 151643 BPE tokens; the ids above
# them up to VOCAB are padding rows of the embedding, as in the real model.
N_BPE = 151643
SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}
BOS_ID, EOS_ID, PAD_ID = 151643, 151645, 151643
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# llama-quantize type name -> output file suffix.
QUANTS = {"Q8_0": "q8_0", "Q4_K_M": "q4_k_m"}


def die(msg: str) -> None:
    sys.exit(f"error: {msg}")


# ---------------------------------------------------------------------------
# make: the F16 model
# ---------------------------------------------------------------------------


def byte_level_chars() -> list[str]:
    """GPT-2's byte-to-unicode table, in GPT-2's order (printable bytes first).

    Byte-level BPE vocabularies (GPT-2, Qwen, Llama 3) start with these 256
    one-character tokens; llama.cpp maps every character of a normal token back
    through this table, so every token must be spelt with these characters only.
    """
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges): a small but valid byte-level BPE.

    Ids 0..255 are the byte-level characters; then come the results of the
    merges (" x" for each letter x, written "Ġx", and every pair of lowercase
    letters); the remaining BPE ids are filler tokens `<tok123>` that no merge
    produces; then Qwen's special tokens and padding.  Both llama.cpp and
    hakaru (crates/hakaru-engine/src/gguf_tokenizer.rs) require every merge's
    parts and result to be tokens, and all tokens to be distinct.
    """
    tokens = byte_level_chars()
    letters = "abcdefghijklmnopqrstuvwxyz"
    pairs = [("Ġ", x) for x in letters] + [(a, b) for a in letters for b in letters]
    merges = [f"{a} {b}" for a, b in pairs]
    tokens += [a + b for a, b in pairs]
    tokens += [f"<tok{i}>" for i in range(len(tokens), N_BPE)]
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    for i in range(N_BPE, VOCAB):
        if i in SPECIALS:
            tokens.append(SPECIALS[i])
            types.append(int(gguf.TokenType.CONTROL))
        else:
            tokens.append(f"[PAD{i}]")
            types.append(int(gguf.TokenType.UNUSED))
    assert len(tokens) == VOCAB and len(set(tokens)) == VOCAB
    return tokens, types, merges


def tensor_plan() -> list[tuple[str, tuple[int, ...], str]]:
    """(GGUF name, numpy shape, kind) in llama.cpp's convert_hf_to_gguf.py order.

    A numpy shape is (rows, cols) = HF's (out_features, in_features); the GGUF
    stores it as ne = [cols, rows].  kind: "weight" (random F16), "norm" (F32
    ones) or "bias" (random F32).  Embeddings are tied: no output.weight.
    """
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    plan = [("token_embd.weight", (VOCAB, HIDDEN), "weight")]
    for i in range(LAYERS):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (HIDDEN,), "norm"),
            (b + "attn_q.weight", (q, HIDDEN), "weight"),
            (b + "attn_q.bias", (q,), "bias"),
            (b + "attn_k.weight", (kv, HIDDEN), "weight"),
            (b + "attn_k.bias", (kv,), "bias"),
            (b + "attn_v.weight", (kv, HIDDEN), "weight"),
            (b + "attn_v.bias", (kv,), "bias"),
            (b + "attn_output.weight", (HIDDEN, q), "weight"),
            (b + "ffn_norm.weight", (HIDDEN,), "norm"),
            (b + "ffn_gate.weight", (INTERMEDIATE, HIDDEN), "weight"),
            (b + "ffn_up.weight", (INTERMEDIATE, HIDDEN), "weight"),
            (b + "ffn_down.weight", (HIDDEN, INTERMEDIATE), "weight"),
        ]
    plan.append(("output_norm.weight", (HIDDEN,), "norm"))
    return plan


def tensor_data(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "norm":
        return np.ones(shape, dtype=np.float32)
    x = rng.random(shape, dtype=np.float32)
    x *= 2 * AMPLITUDE
    x -= AMPLITUDE
    return x if kind == "bias" else x.astype(np.float16)


def write_f16(path: Path) -> None:
    tokens, types, merges = vocabulary()
    w = gguf.GGUFWriter(str(path), ARCH)
    w.add_type("model")
    w.add_name(f"{STEM} (random weights)")
    w.add_description(
        "Random weights in the shape of Qwen2.5-0.5B-Instruct, for throughput comparisons only "
        "(hakaru scripts/llama-cpp-bench.py); its outputs are meaningless."
    )
    w.add_size_label("0.5B")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(INTERMEDIATE)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_vocab_size(VOCAB)
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    # As published Qwen GGUFs: bos = <|endoftext|>, never added; eos = <|im_end|>.
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_pad_token_id(PAD_ID)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    # Declare every tensor first, then stream the data one tensor at a time so
    # that at most one tensor (the 136M-entry embedding) is in memory.
    plan = tensor_plan()
    for name, shape, kind in plan:
        dtype = np.float16 if kind == "weight" else np.float32
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(SEED)
    n_params = 0
    for name, shape, kind in plan:
        data = tensor_data(rng, shape, kind)
        w.write_tensor_data(data)
        n_params += data.size
    w.close()
    print(f"wrote {path} ({n_params / 1e6:.2f} M parameters, {path.stat().st_size / 2**20:.1f} MiB)")


# ---------------------------------------------------------------------------
# make: quantization
# ---------------------------------------------------------------------------


def find_tool(name: str, bin_dir: Path) -> Path | None:
    p = bin_dir / name
    if p.is_file() and os.access(p, os.X_OK):
        return p
    found = shutil.which(name)
    return Path(found) if found else None


def missing_tool(name: str, bin_dir: Path) -> str:
    return (
        f"`{name}` was found neither in {bin_dir} nor on PATH.\n"
        f"Build it from llama.cpp (see the top of {Path(__file__).name} for the commands, e.g.\n"
        f"  cmake --build /tmp/llcpp/build --target {name} -j 2)\n"
        f"and pass --bin-dir DIR or set LLAMA_CPP_BIN=DIR to the folder that holds it."
    )


def quantize(src: Path, dst: Path, qtype: str, bin_dir: Path, threads: int) -> None:
    """Quantize with llama.cpp's own per-tensor rules (for Q4_K_M: which tensors get
    Q6_K, and the fallbacks for rows of 896, not a multiple of 256, that K-quants
    cannot hold).  The tool's log, with each tensor's choice, goes to <dst>.log."""
    tool = find_tool("llama-quantize", bin_dir)
    log = dst.with_suffix(".log")
    if tool is not None:
        cmd = [str(tool), str(src), str(dst), qtype, str(threads)]
        print("$", " ".join(cmd))
        with log.open("w") as f:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            die(f"llama-quantize failed (exit {rc}); see {log}")
        return
    # Fallback: the same code through llama-cpp-python's binding.
    try:
        import llama_cpp
    except ImportError:
        die(missing_tool("llama-quantize", bin_dir) + "\n(or install llama-cpp-python, whose llama_model_quantize is used as a fallback)")
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    print(f"llama_cpp.llama_model_quantize({src}, {dst}, {qtype}) (no llama-quantize binary)")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        die(f"llama_model_quantize failed (return {rc})")


def type_counts(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def cmd_make(args: argparse.Namespace) -> None:
    out: Path = args.dir
    out.mkdir(parents=True, exist_ok=True)
    if (out / "tokenizer.json").exists():
        # hakaru prefers a tokenizer.json beside the GGUF over the GGUF's own.
        print(f"warning: {out}/tokenizer.json exists; hakaru would use it instead of the GGUF's tokenizer")
    f16 = out / f"{STEM}-f16.gguf"
    if f16.exists() and not args.force:
        print(f"{f16} exists (use --force to rewrite it)")
    else:
        write_f16(f16)
    for qtype in args.quant:
        dst = out / f"{STEM}-{QUANTS[qtype]}.gguf"
        if dst.exists() and not args.force:
            print(f"{dst} exists (use --force to rewrite it)")
        else:
            quantize(f16, dst, qtype, args.bin_dir, args.threads)
        counts = ", ".join(f"{k} {v}" for k, v in type_counts(dst).items())
        print(f"{dst.name}: {dst.stat().st_size / 2**20:.1f} MiB; tensor types: {counts}")


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------


def test_name(rec: dict) -> str:
    """llama-bench's own test label: pp512, tg128, pp512+tg128, with @ dN for depth."""
    p, n, d = rec.get("n_prompt", 0), rec.get("n_gen", 0), rec.get("n_depth", 0)
    name = f"pp{p}+tg{n}" if p and n else f"pp{p}" if p else f"tg{n}"
    return f"{name} @ d{d}" if d else name


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cmd_bench(args: argparse.Namespace) -> None:
    tool = find_tool("llama-bench", args.bin_dir)
    if tool is None:
        die(missing_tool("llama-bench", args.bin_dir))
    files = args.files or [args.dir / f"{STEM}-{s}.gguf" for s in QUANTS.values()]
    missing = [f for f in files if not f.is_file()]
    if missing:
        die("model file(s) not found: " + ", ".join(map(str, missing))
            + f"\nWrite them first: {Path(__file__).name} make --dir {args.dir}")

    runs = []
    for f in files:
        cmd = [str(tool), "-m", str(f), "-t", str(args.threads), "-p", str(args.n_prompt),
               "-n", str(args.n_gen), "-r", str(args.repetitions), "-o", "json"]
        load_before = os.getloadavg()
        print("$", " ".join(cmd), f"  (load average {load_before[0]:.2f})", flush=True)
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            die(f"llama-bench failed on {f} (exit {proc.returncode}); its stderr is above")
        try:
            records = json.loads(proc.stdout)
        except json.JSONDecodeError:
            die(f"llama-bench printed no JSON for {f}:\n{proc.stdout[-2000:]}")
        runs.append({
            "file": str(f),
            "command": cmd,
            "wall_seconds": round(time.time() - t0, 1),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "results": records,
        })

    # Table: one row per (file, test), t/s as llama-bench prints it (mean +- sd
    # over the -r repetitions).
    rows = [("model", "type", "size", "params", "test", "t/s", "runs (t/s)")]
    for run in runs:
        for rec in run["results"]:
            rows.append((
                Path(run["file"]).name,
                rec.get("model_type", "?"),
                f"{rec.get('model_size', 0) / 2**20:.1f} MiB",
                f"{rec.get('model_n_params', 0) / 1e6:.2f} M",
                test_name(rec),
                f"{rec['avg_ts']:.2f} ± {rec['stddev_ts']:.2f}",
                " ".join(f"{x:.2f}" for x in rec.get("samples_ts", [])),
            ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    first = runs[0]["results"][0] if runs and runs[0]["results"] else {}
    loads = " / ".join(f"{r['loadavg_before'][0]:.2f}" for r in runs)
    print(f"llama.cpp build {first.get('build_commit', '?')} ({first.get('build_number', '?')}), "
          f"backend {first.get('backends', '?')}, {first.get('cpu_info', cpu_model())}, "
          f"load average before each file: {loads}")

    out = args.json or args.dir / "llama-bench.json"
    out.write_text(json.dumps({
        "host": {"cpu": cpu_model(), "nproc": os.cpu_count(), "platform": platform.platform()},
        "runs": runs,
    }, indent=2) + "\n")
    print(f"wrote {out}")


# ---------------------------------------------------------------------------


def main() -> None:
    # Options shared by both subcommands (accepted after the subcommand's name).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"model folder (default {DEFAULT_DIR})")
    common.add_argument("--bin-dir", type=Path, default=DEFAULT_BIN_DIR,
                        help=f"folder with llama-quantize and llama-bench (default $LLAMA_CPP_BIN or {DEFAULT_BIN_DIR}; then PATH)")
    common.add_argument("-t", "--threads", type=int, default=2, help="threads for llama-quantize / llama-bench (default 2)")

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    mk = sub.add_parser("make", parents=[common], help="write the F16 GGUF and quantize it")
    mk.add_argument("--quant", nargs="+", choices=list(QUANTS), default=list(QUANTS), help="quantizations (default: all)")
    mk.add_argument("--force", action="store_true", help="rewrite files that exist")

    bn = sub.add_parser("bench", parents=[common], help="run llama-bench on the quantized files")
    bn.add_argument("files", nargs="*", type=Path, help=f"GGUF files (default: the {', '.join(QUANTS)} files in --dir)")
    bn.add_argument("-r", "--repetitions", type=int, default=5, help="llama-bench -r (default 5)")
    bn.add_argument("-p", "--n-prompt", type=int, default=512, help="llama-bench -p (default 512)")
    bn.add_argument("-n", "--n-gen", type=int, default=128, help="llama-bench -n (default 128)")
    bn.add_argument("--json", type=Path, help="results file (default <dir>/llama-bench.json)")

    args = ap.parse_args()
    {"make": cmd_make, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
