#!/usr/bin/env python3
"""Check that hakaru renders real chat templates byte for byte as transformers does.

Usage (from the repository root):

    python3 scripts/check-real-templates.py [DIR] [--harness auto|test|cli] [--verbose]

DIR holds `*.jinja` chat templates of real models (default: ../shared/chat-templates). The
templates are test material and are NOT part of this repository; nothing is copied into it (the CLI
harness writes a throw-away model directory under the system temp dir).

For every template, a set of conversations (system/user/assistant, multi-turn, reasoning in the
history, Japanese text, tools and tool calls, add_generation_prompt on and off, Qwen3's
enable_thinking=false, Llama 3.1's date_string and builtin_tools, an error case) is rendered by

* transformers' `render_jinja_template` (transformers.utils.chat_template_utils), the reference, and
* hakaru: either the `hakaru template` command (`target/debug/hakaru`), or, when that binary is not
  built, the `#[ignore]`d engine test `template::tests::render_cases_from_env`, which renders a batch
  of cases through `hakaru_engine::template::ChatTemplate`.

and the outputs are compared byte for byte. When the reference raises (a template's
`raise_exception`), hakaru must fail too, with the same message.

One deliberate difference is neutralised: hakaru does not define `strftime_now` (renders are
deterministic), so the reference environment has it removed as well; templates that guard it with
`is defined` then take their default date in both.

Special tokens per family (passed as transformers passes the tokenizer's special tokens): Qwen eos
`<|im_end|>`, no bos; DeepSeek-R1 distills bos `<｜begin▁of▁sentence｜>`, eos
`<｜end▁of▁sentence｜>`; Llama 3.1 bos `<|begin_of_text|>`, eos `<|eot_id|>`.

Exit status: 0 when every case matches, 1 otherwise.
"""

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# transformers' template code needs no torch; a CUDA build of torch without its runtime libraries
# fails on import, so keep transformers from importing it.
os.environ.setdefault("USE_TORCH", "0")
os.environ.setdefault("USE_TF", "0")

from transformers.utils.chat_template_utils import (  # noqa: E402
    _compile_jinja_template,
    render_jinja_template,
)

REPO = Path(__file__).resolve().parent.parent

TOKENS = {
    "qwen": {"eos_token": "<|im_end|>"},
    "deepseek": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
    "llama": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
}


def family(name: str) -> str:
    low = name.lower()
    if "deepseek" in low:
        return "deepseek"
    if "llama" in low:
        return "llama"
    if "qwen" in low or "qwq" in low:
        return "qwen"
    raise SystemExit(f"{name}: unknown model family; name the file after the model (Qwen…, deepseek…, …Llama…)")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "指定した都市の現在の天気を調べる (\"city\" in any language) <b>&</b>",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "都市名、例: 東京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
    },
}

SYSTEM = {"role": "system", "content": "You are a helpful assistant. 丁寧に答えてください。"}
USER = {"role": "user", "content": "What is 2 + 2?"}
ASSISTANT = {"role": "assistant", "content": "4."}
USER2 = {"role": "user", "content": "And 3 + 3?  "}
JA = [
    {"role": "system", "content": "あなたは日本語で簡潔に答えるアシスタントです。"},
    {"role": "user", "content": "　日本の首都はどこですか？\n改行も含みます。😀"},
    {"role": "assistant", "content": "東京です。「とうきょう」と読みます。"},
    {"role": "user", "content": "ありがとう！　次に大阪について教えて。"},
]
REASONING_HISTORY = [
    {"role": "user", "content": "1+1は？"},
    {"role": "assistant", "content": "<think>\n簡単な足し算。1+1=2。\n</think>\n\n答えは2です。"},
    {"role": "user", "content": "では2+2は？"},
]
REASONING_LAST = [
    {"role": "user", "content": "1+1は？"},
    {"role": "assistant", "content": "<think>\n簡単な足し算。\n</think>\n\n2です。"},
]


def tool_call(arguments):
    return {"type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def cases(fam: str, name: str):
    """(case name, messages, add_generation_prompt, tools, extra kwargs)"""
    out = []
    for agp in (True, False):
        out.append((f"system+user agp={agp}", [SYSTEM, USER], agp, None, {}))
    out.append(("user only", [USER], True, None, {}))
    out.append(("multi-turn", [SYSTEM, USER, ASSISTANT, USER2], True, None, {}))
    out.append(("multi-turn ends with assistant", [SYSTEM, USER, ASSISTANT], False, None, {}))
    out.append(("japanese", JA, True, None, {}))
    out.append(("reasoning in history", REASONING_HISTORY, True, None, {}))
    out.append(("reasoning in last turn", REASONING_LAST, False, None, {}))
    out.append(("system in the middle", [USER, ASSISTANT, {"role": "system", "content": "Be brief."}, USER2], True, None, {}))
    low = name.lower()
    if fam == "qwen":
        out.append(("tools", [SYSTEM, USER], True, [WEATHER_TOOL], {}))
        out.append(("tools, no system", [{"role": "user", "content": "京都の天気は？"}], True, [WEATHER_TOOL], {}))
        calls = [
            {"role": "user", "content": "京都の天気は？"},
            {"role": "assistant", "content": "", "tool_calls": [tool_call({"city": "京都", "days": 2})]},
            {"role": "tool", "content": "{\"weather\": \"晴れ\", \"temp\": 21.5}"},
            {"role": "tool", "content": "second result"},
        ]
        out.append(("tool calls and responses", calls, True, [WEATHER_TOOL], {}))
        out.append(("enable_thinking=false", [SYSTEM, USER], True, None, {"enable_thinking": False}))
        out.append(("enable_thinking=true", [SYSTEM, USER], True, None, {"enable_thinking": True}))
        if "qwen3" in low:
            rc = [
                {"role": "user", "content": "1+1は？"},
                {"role": "assistant", "content": "2です。", "reasoning_content": "足し算。"},
                {"role": "user", "content": "2+2は？"},
                {"role": "assistant", "content": "4です。", "reasoning_content": "また足し算。"},
            ]
            out.append(("reasoning_content field", rc, False, None, {}))
            out.append(("tool response as user text", [{"role": "user", "content": "<tool_response>x</tool_response>"}, USER], True, None, {}))
        out.append(("content parts (templates expect strings)", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], True, None, {}))
    if fam == "deepseek":
        calls = [
            {"role": "user", "content": "京都の天気は？"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call("{\"city\": \"京都\"}"), tool_call("{\"city\": \"大阪\"}")]},
            {"role": "tool", "content": "晴れ"},
            {"role": "tool", "content": "雨"},
            {"role": "assistant", "content": "京都は晴れ、大阪は雨です。"},
            {"role": "user", "content": "ありがとう"},
        ]
        out.append(("tool calls (string arguments)", calls, True, None, {}))
        out.append(("ends with tool output", calls[:4], True, None, {}))
        out.append(("enable_thinking=false", [SYSTEM, USER], True, None, {"enable_thinking": False}))
    if fam == "llama":
        out.append(("tools in user message", [SYSTEM, {"role": "user", "content": "  京都の天気は？ "}], True, [WEATHER_TOOL], {}))
        out.append(("tools in system message", [SYSTEM, USER], True, [WEATHER_TOOL], {"tools_in_user_message": False}))
        calls = [
            {"role": "user", "content": "京都の天気は？"},
            {"role": "assistant", "tool_calls": [tool_call({"city": "京都", "days": 2, "unit": None})]},
            {"role": "tool", "content": "晴れ、21.5度"},
            {"role": "ipython", "content": {"weather": "晴れ"}},
        ]
        out.append(("tool call and tool output", calls, True, [WEATHER_TOOL], {"tools_in_user_message": False}))
        out.append(("date_string", [USER], True, None, {"date_string": "01 Jan 2025"}))
        bt = [
            {"role": "user", "content": "Search for the weather."},
            {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "brave_search", "arguments": {"query": "京都 天気"}}}]},
        ]
        out.append(("builtin_tools", bt, True, None, {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]}))
        two = [USER, {"role": "assistant", "tool_calls": [tool_call({"city": "a"}), tool_call({"city": "b"})]}]
        out.append(("raise_exception: two tool calls", two, True, None, {}))
        out.append(("raise_exception: tools without user message", [SYSTEM], True, [WEATHER_TOOL], {}))
    return out


def reference(text, messages, agp, tools, kwargs):
    compiled = _compile_jinja_template(text)
    # hakaru leaves strftime_now undefined (deterministic prompts); do the same here.
    compiled.environment.globals.pop("strftime_now", None)
    try:
        rendered, _ = render_jinja_template(
            conversations=[copy.deepcopy(messages)],
            tools=tools,
            chat_template=text,
            add_generation_prompt=agp,
            **kwargs,
        )
        return {"rendered": rendered[0]}
    except Exception as e:  # noqa: BLE001 — any failure of the reference is a result to compare
        return {"error": f"{type(e).__name__}: {e}"}


def hakaru_test_harness(batch):
    """Render a batch through the ignored engine test; returns one result per case."""
    with tempfile.TemporaryDirectory() as tmp:
        cases_path = Path(tmp) / "cases.json"
        out_path = Path(tmp) / "out.json"
        cases_path.write_text(json.dumps(batch, ensure_ascii=False), encoding="utf-8")
        env = dict(os.environ, HAKARU_TEMPLATE_CASES=str(cases_path), HAKARU_TEMPLATE_OUT=str(out_path))
        cmd = ["cargo", "test", "-q", "-p", "hakaru-engine", "--lib", "template::tests::render_cases_from_env",
               "--", "--ignored", "--exact"]
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if r.returncode != 0 or not out_path.exists():
            sys.exit(f"the engine harness failed ({' '.join(cmd)}):\n{r.stdout}\n{r.stderr}")
        return json.loads(out_path.read_text(encoding="utf-8"))


def hakaru_cli(binary, batch):
    """Render each case with `hakaru template` on a throw-away model directory."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(batch):
            model = Path(tmp) / f"model{i}"
            model.mkdir()
            shutil.copyfile(case["template"], model / "chat_template.jinja")
            cfg = {k: case[k] for k in ("bos_token", "eos_token") if k in case}
            (model / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
            msgs = Path(tmp) / f"messages{i}.json"
            msgs.write_text(json.dumps(case["messages"], ensure_ascii=False), encoding="utf-8")
            cmd = [str(binary), "template", "--model", str(model), "--messages", str(msgs), "--json"]
            if case["add_generation_prompt"]:
                cmd.append("--add-generation-prompt")
            if case.get("tools") is not None:
                tools = Path(tmp) / f"tools{i}.json"
                tools.write_text(json.dumps(case["tools"], ensure_ascii=False), encoding="utf-8")
                cmd += ["--tools", str(tools)]
            for k, v in case.get("extra", {}).items():
                cmd += ["--set", f"{k}={json.dumps(v, ensure_ascii=False)}"]
            r = subprocess.run(cmd, capture_output=True)
            if r.returncode == 0:
                results.append({"rendered": json.loads(r.stdout.decode("utf-8"))["prompt"]})
            else:
                results.append({"error": r.stderr.decode("utf-8", "replace").strip()})
    return results


def cli_available(binary):
    if not binary.exists():
        return False
    r = subprocess.run([str(binary), "template", "--help"], capture_output=True)
    return r.returncode == 0


def first_difference(a, b):
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    return i, a[max(0, i - 30): i + 30], b[max(0, i - 30): i + 30]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default=str(REPO.parent / "shared" / "chat-templates"))
    ap.add_argument("--harness", choices=["auto", "test", "cli"], default="auto")
    ap.add_argument("--binary", default=str(REPO / "target" / "debug" / "hakaru"))
    ap.add_argument("--verbose", "-v", action="store_true", help="print both renders of every mismatch")
    args = ap.parse_args()

    templates = sorted(Path(args.dir).glob("*.jinja"))
    if not templates:
        sys.exit(f"{args.dir}: no *.jinja templates found; pass the directory that holds them")

    batch, expected, labels = [], [], []
    for path in templates:
        text = path.read_text(encoding="utf-8")
        fam = family(path.name)
        for case_name, messages, agp, tools, extra in cases(fam, path.name):
            kwargs = dict(TOKENS[fam])
            kwargs.update(extra)
            expected.append(reference(text, messages, agp, tools, kwargs))
            case = {"template": str(path.resolve()), "messages": messages, "add_generation_prompt": agp, "extra": extra}
            case.update(TOKENS[fam])
            if tools is not None:
                case["tools"] = tools
            batch.append(case)
            labels.append((path.name, case_name))

    binary = Path(args.binary)
    harness = args.harness
    if harness == "auto":
        harness = "cli" if cli_available(binary) else "test"
    got = hakaru_cli(binary, batch) if harness == "cli" else hakaru_test_harness(batch)
    print(f"hakaru via: {'`hakaru template` (' + str(binary) + ')' if harness == 'cli' else 'engine test harness'}")

    failures = 0
    current = None
    for (tname, cname), want, have in zip(labels, expected, got):
        if tname != current:
            print(f"\n{tname}")
            current = tname
        if "rendered" in want and "rendered" in have:
            if want["rendered"] == have["rendered"]:
                print(f"  OK     {cname} ({len(want['rendered'].encode('utf-8'))} bytes)")
            else:
                failures += 1
                i, a, b = first_difference(want["rendered"], have["rendered"])
                print(f"  DIFF   {cname}: first difference at character {i}")
                print(f"           transformers: {a!r}")
                print(f"           hakaru:       {b!r}")
                if args.verbose:
                    print(f"           full transformers: {want['rendered']!r}\n           full hakaru: {have['rendered']!r}")
        elif "error" in want and "error" in have:
            msg = want["error"].split(": ", 1)[-1]
            same = want["error"].startswith("TemplateError") and msg in have["error"]
            if same or not want["error"].startswith("TemplateError"):
                print(f"  OK     {cname}: both fail ({want['error']})")
                if not same:
                    print(f"           hakaru: {have['error']}")
            else:
                failures += 1
                print(f"  DIFF   {cname}: both fail, different messages\n           transformers: {want['error']}\n           hakaru: {have['error']}")
        else:
            failures += 1
            print(f"  DIFF   {cname}: transformers {'fails' if 'error' in want else 'renders'}, hakaru {'fails' if 'error' in have else 'renders'}")
            print(f"           transformers: {want.get('error') or repr(want.get('rendered'))[:200]}")
            print(f"           hakaru:       {have.get('error') or repr(have.get('rendered'))[:200]}")
    total = len(labels)
    print(f"\n{total - failures} of {total} cases match byte for byte across {len(templates)} templates")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
