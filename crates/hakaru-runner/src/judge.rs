//! The judge: a second model that grades open answers (a 1–5 score) or gives a second opinion on
//! a classifier's label, following a rubric kept as data (`prompts/judge/<name>.toml`, see
//! [`hakaru_suites::rubric`]). Used only when a run is given `--judge <model>`, on the suites
//! whose `suite.toml` names a rubric; without it every suite still scores.
//!
//! Each judged sample gets a `judge` score object: the rubric (name, version, sha256), the judge
//! model, the judge's raw answer (and reasoning, if it produced one), the verdict read from it
//! (`score` or `label`, null when none could be read, with `parsed` false), and for label rubrics
//! whether the verdict `agrees` with the classifier's own `label`. The judge generates greedily,
//! with a seed derived from the case's, so a judged run is as reproducible as any other.

use std::collections::BTreeMap;
use std::path::Path;

use hakaru_engine::backend::{Backend, PromptMode};
use hakaru_engine::generate::{FinishReason, GenerateOptions, Sampling};
use hakaru_suites::rubric::{self, Rubric, RubricOutput, RubricWhen, Verdict};
use hakaru_suites::Suite;
use hakaru_types::{DataFileInfo, JudgeInfo, SampleRecord};
use serde_json::{json, Map, Value};

use crate::{provenance, RunError};

/// The score key of judged samples.
pub const JUDGE: &str = "judge";

/// A judge model with the rubrics of the plan's suites.
pub struct Judge<'a> {
    pub backend: &'a mut dyn Backend,
    /// By rubric name.
    pub rubrics: BTreeMap<String, Rubric>,
}

/// The rubrics named by `suites`, loaded from `<root>/judge/`.
pub fn rubrics_for(root: &Path, suites: &[Suite]) -> Result<BTreeMap<String, Rubric>, RunError> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for s in suites {
        if let Some(name) = &s.spec.judge {
            if out.contains_key(name) {
                continue;
            }
            match rubric::load(root, name) {
                Ok(r) => {
                    out.insert(name.clone(), r);
                }
                Err(e) => problems.extend(e.0),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(RunError::Suites(hakaru_suites::SuiteErrors(problems)))
    }
}

impl Judge<'_> {
    /// What a run records about its judge.
    pub fn info(&self) -> JudgeInfo {
        let described = self.backend.describe();
        JudgeInfo {
            device: Some(provenance::device(&described)),
            model: provenance::model(&described),
            rubrics: self
                .rubrics
                .values()
                .map(|r| DataFileInfo {
                    name: format!("judge/{}.toml", r.name),
                    version: r.version.clone(),
                    sha256: r.sha256.clone(),
                })
                .collect(),
        }
    }
}

/// Whether `rubric` applies to a sample with these scores.
fn applies(rubric: &Rubric, scores: &BTreeMap<String, Value>) -> bool {
    match rubric.when {
        RubricWhen::Always => true,
        RubricWhen::LowConfidence => scores
            .values()
            .any(|v| v.get("confidence").and_then(Value::as_str) == Some("low")),
    }
}

/// The judge's prompt for one sample.
pub fn prompt_text(rubric: &Rubric, rec: &SampleRecord) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("prompt", &rubric.prompt)
        .map_err(|e| format!("{}: prompt: {e}", rubric.path.display()))?;
    let none = "(none)";
    env.get_template("prompt")
        .and_then(|t| {
            t.render(minijinja::context! {
                question => rec.input.as_deref().unwrap_or(none),
                reference => rec.reference.as_deref().unwrap_or(none),
                answer => rec.output.as_deref().unwrap_or(""),
                reasoning => rec.reasoning.as_deref().unwrap_or(none),
                lang => rec.lang.as_deref().unwrap_or("unknown"),
            })
        })
        .map_err(|e| format!("{}: prompt: {e}", rubric.path.display()))
}

/// Judge one sample when its suite has a rubric that applies; the `judge` score object is added
/// to `rec.scores`. Returns an error message when the judge failed (the object records it too).
pub fn judge_sample(
    judge: &mut Judge,
    suite: &Suite,
    rec: &mut SampleRecord,
    seed: u64,
) -> Option<String> {
    let name = suite.spec.judge.as_ref()?;
    let rubric = judge.rubrics.get(name)?;
    if rec.output.is_none() || !applies(rubric, &rec.scores) {
        return None;
    }
    let mut m = Map::new();
    m.insert("rubric".into(), json!(rubric.name));
    m.insert("rubric_version".into(), json!(rubric.version));
    m.insert("rubric_sha256".into(), json!(rubric.sha256));
    m.insert("model".into(), json!(judge.backend.describe().reference));
    let result = (|| {
        let text = prompt_text(rubric, rec)?;
        let prompt = judge
            .backend
            .render_prompt(
                &json!([{"role": "user", "content": text}]),
                None,
                PromptMode::Chat,
            )
            .map_err(|e| format!("rendering the judge's prompt: {e}"))?;
        let opts = GenerateOptions {
            max_tokens: rubric.max_tokens,
            ignore_eos: false,
            sampling: Sampling {
                seed,
                ..Sampling::default()
            },
            stop_ids: Vec::new(),
        };
        judge
            .backend
            .generate(&prompt, &opts)
            .map_err(|e| format!("the judge's generation: {e}"))
    })();
    let err = match result {
        Ok(g) => {
            let verdict = rubric.verdict(&g.text);
            m.insert("output".into(), json!(g.text));
            if let Some(r) = &g.reasoning {
                m.insert("reasoning".into(), json!(r));
            }
            m.insert(
                "finish_reason".into(),
                json!(match g.finish_reason {
                    FinishReason::Stop => "stop",
                    FinishReason::Length => "length",
                }),
            );
            m.insert("parsed".into(), json!(verdict.is_some()));
            match rubric.output {
                RubricOutput::Score => {
                    let s = match verdict {
                        Some(Verdict::Score(s)) => Some(s),
                        _ => None,
                    };
                    m.insert("score".into(), json!(s));
                }
                RubricOutput::Label => {
                    let l = match verdict {
                        Some(Verdict::Label(l)) => Some(l),
                        _ => None,
                    };
                    let own = rec
                        .scores
                        .values()
                        .find_map(|v| v.get("label").and_then(Value::as_str));
                    if let (Some(l), Some(own)) = (&l, own) {
                        m.insert("agrees".into(), json!(l == own));
                    }
                    m.insert("label".into(), json!(l));
                }
            }
            None
        }
        Err(e) => {
            m.insert("parsed".into(), json!(false));
            m.insert("error".into(), json!(e));
            Some(format!("judge: {e}"))
        }
    };
    rec.scores.insert(JUDGE.into(), Value::Object(m));
    err
}
