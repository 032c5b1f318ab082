//! The report of one or more runs, as [`Block`]s: summary, Japanese quality, refusals,
//! throughput and cost, all metrics, provenance, per-case outputs.

use std::collections::{BTreeMap, BTreeSet};

use hakaru_types::{BenchRow, Contrast, MetricSummary, SampleRecord};
use serde_json::Value;

use crate::common::*;
use crate::doc::{h, h_id, Block, Cell, Table};
use crate::svg::{Bar, BarChart, Chart, Heatmap, Point, Scale, Scatter, Series};
use crate::Run;

/// Longest output or reasoning shown in full; longer ones are cut here, with a note.
pub const OUTPUT_CAP: usize = 2000;

/// A headline column of the summary table.
struct Headline {
    title: &'static str,
    suite: &'static str,
    metric: &'static str,
}

const HEADLINES: [Headline; 8] = [
    Headline {
        title: "ja-choice accuracy",
        suite: "ja-choice",
        metric: "choice.correct",
    },
    Headline {
        title: "ja-open chrF",
        suite: "ja-open",
        metric: "chrf.chrf",
    },
    Headline {
        title: "ja-open in Japanese",
        suite: "ja-open",
        metric: "ja-fidelity.in_japanese",
    },
    Headline {
        title: "ja-open Chinese leak",
        suite: "ja-open",
        metric: "ja-fidelity.zh_leak",
    },
    Headline {
        title: "ja-ppl perplexity/char",
        suite: "ja-ppl",
        metric: "perplexity.perplexity_per_char",
    },
    Headline {
        title: "sensitive non-answer",
        suite: SENSITIVE,
        metric: NON_ANSWER,
    },
    Headline {
        title: "over-refusal (benign non-answer)",
        suite: BENIGN,
        metric: NON_ANSWER,
    },
    Headline {
        title: "harmful refused",
        suite: HARMFUL,
        metric: REFUSED,
    },
];

/// Metrics of Japanese suites broken down by tag and language (others: all of a suite's).
const KEY_METRICS: [&str; 7] = [
    "choice.correct",
    "choice.correct_norm",
    "chrf.chrf",
    "ja-fidelity.in_japanese",
    "ja-fidelity.zh_leak",
    "perplexity.perplexity_per_char",
    "exact.match",
];

/// The numbered names of the runs (`1. model (weights, device)`).
pub fn names(runs: &[Run]) -> Vec<String> {
    labels(runs)
        .into_iter()
        .enumerate()
        .map(|(i, l)| format!("{}. {l}", i + 1))
        .collect()
}

/// The whole report.
pub fn build(runs: &[Run]) -> Vec<Block> {
    let names = names(runs);
    let mut b = vec![h(1, "hakaru report")];
    b.push(Block::Para(format!(
        "{} run{}. Intervals are 95%: Wilson for rates, bootstrap over cases for means; differences of rates are in percentage points (pp) with Newcombe's interval. A dash (–) marks what a run does not have.",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    )));
    let mut t = Table {
        head: vec![
            "run",
            "run id",
            "status",
            "started (UTC)",
            "suites",
            "samples",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        rows: Vec::new(),
    };
    for (r, name) in runs.iter().zip(&names) {
        let p = &r.record.provenance;
        t.rows.push(vec![
            Cell::text(name),
            Cell::text(&r.record.run_id),
            Cell::text(status(r)),
            Cell::text(&p.started_at),
            Cell::num(r.record.summary.len().to_string()),
            Cell::num(r.samples.len().to_string()),
        ]);
    }
    b.push(Block::Table(t));
    summary(&mut b, runs, &names);
    japanese(&mut b, runs, &names);
    refusals(&mut b, runs, &names);
    throughput(&mut b, runs, &names);
    all_metrics(&mut b, runs, &names);
    provenance(&mut b, runs, &names);
    cases(&mut b, runs, &names);
    b
}

fn status(r: &Run) -> String {
    serde_json::to_value(r.record.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn asymmetry<'a>(run: &'a Run, group: &str) -> Option<&'a Contrast> {
    run.record
        .contrasts
        .iter()
        .find(|c| c.name == ASYMMETRY && c.metric == NON_ANSWER && c.group == group)
}

/// The run's first throughput row of a kind (prompt processing or generation), depth 0 first.
fn first_row(run: &Run, gen: bool) -> Option<&BenchRow> {
    let of_kind = |r: &&BenchRow| (r.n_gen > 0) == gen;
    run.record
        .throughput
        .iter()
        .filter(of_kind)
        .find(|r| r.depth == 0)
        .or_else(|| run.record.throughput.iter().find(of_kind))
}

fn summary_n(m: Option<&MetricSummary>, kind: Kind) -> String {
    match m {
        Some(m) => format!("{}, n={}", summary_text(Some(m), kind), m.n),
        None => DASH.into(),
    }
}

fn summary(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "summary", "Summary"));
    type Col<'a> = (String, Box<dyn Fn(&Run) -> Option<String> + 'a>);
    let mut cols: Vec<Col> = Vec::new();
    for hl in &HEADLINES {
        let kind = kind(runs, hl.metric);
        cols.push((
            hl.title.to_string(),
            Box::new(move |r: &Run| {
                metric(r, hl.suite, hl.metric).map(|m| summary_text(Some(m), kind))
            }),
        ));
        if hl.suite == SENSITIVE {
            cols.push((
                "censorship asymmetry".to_string(),
                Box::new(|r: &Run| {
                    asymmetry(r, "all")
                        .map(|c| difference_text(c.difference, c.ci_low, c.ci_high, Kind::Rate))
                }),
            ));
        }
    }
    for (title, gen) in [
        ("prompt t/s (median)", false),
        ("generation t/s (median)", true),
    ] {
        cols.push((
            title.to_string(),
            Box::new(move |r: &Run| {
                first_row(r, gen).map(|row| format!("{} ({})", num(row.median), row.test))
            }),
        ));
    }
    let values: Vec<Vec<Option<String>>> = runs
        .iter()
        .map(|r| cols.iter().map(|(_, f)| f(r)).collect())
        .collect();
    let keep: Vec<usize> = (0..cols.len())
        .filter(|&c| values.iter().any(|row| row[c].is_some()))
        .collect();
    if keep.is_empty() {
        b.push(Block::Para(
            "None of the runs has a headline metric (ja-choice, ja-open, ja-ppl, the refusal suites, throughput); see All metrics.".into(),
        ));
        return;
    }
    // One row per metric, one column per run: a dozen metrics stay readable however many
    // runs there are, and the page keeps its width.
    let mut head = vec!["metric".to_string()];
    head.extend(names.iter().cloned());
    let rows = keep
        .iter()
        .map(|&c| {
            let mut row = vec![Cell::text(&cols[c].0)];
            row.extend(
                values
                    .iter()
                    .map(|vals| Cell::num(vals[c].clone().unwrap_or_else(|| DASH.into()))),
            );
            row
        })
        .collect();
    b.push(Block::Table(Table { head, rows }));
    let missing: Vec<&str> = (0..cols.len())
        .filter(|c| !keep.contains(c))
        .map(|c| cols[c].0.as_str())
        .collect();
    b.push(Block::Note(format!(
        "Non-answer: refusal, deflection, official line or empty answer. Censorship asymmetry: the non-answer rate on {SENSITIVE} minus that on its matched control {CONTROL}. Throughput: the median of the timed repetitions of the run's first test of each kind.{}",
        if missing.is_empty() {
            String::new()
        } else {
            format!(" No run has: {}.", missing.join(", "))
        }
    )));
}

/// Suite ids in the order they first appear across the runs.
fn suite_ids(runs: &[Run], keep: impl Fn(&Run, &str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.record.summary {
            if keep(r, &s.suite) && !out.contains(&s.suite) {
                out.push(s.suite.clone());
            }
        }
    }
    out
}

/// Runs that have a suite, with their names.
fn having<'a>(runs: &'a [Run], names: &'a [String], id: &str) -> Vec<(&'a Run, &'a String)> {
    runs.iter()
        .zip(names)
        .filter(|(r, _)| suite(r, id).is_some())
        .collect()
}

/// A table of metrics (rows) by run (columns).
fn metric_table(runs: &[Run], cols: &[(&Run, &String)], id: &str, metrics: &[String]) -> Table {
    let mut head = vec!["metric".to_string()];
    head.extend(cols.iter().map(|(_, n)| (*n).clone()));
    let rows = metrics
        .iter()
        .map(|m| {
            let k = kind(runs, m);
            let mut row = vec![Cell::text(m)];
            row.extend(
                cols.iter()
                    .map(|(r, _)| Cell::num(summary_n(metric(r, id, m), k))),
            );
            row
        })
        .collect();
    Table { head, rows }
}

fn suite_metrics(cols: &[(&Run, &String)], id: &str) -> Vec<String> {
    let set: BTreeSet<&String> = cols
        .iter()
        .filter_map(|(r, _)| suite(r, id))
        .flat_map(|s| s.metrics.keys())
        .collect();
    set.into_iter().cloned().collect()
}

type Breakdown = BTreeMap<String, BTreeMap<String, MetricSummary>>;

/// A breakdown (by tag or by language) of one metric: groups (rows) by run (columns).
fn breakdown_table(
    runs: &[Run],
    cols: &[(&Run, &String)],
    first: &str,
    metric: &str,
    get: impl Fn(&Run) -> Option<&Breakdown>,
) -> Option<Table> {
    let groups: BTreeSet<&String> = cols
        .iter()
        .filter_map(|(r, _)| get(r))
        .flat_map(|g| {
            g.iter()
                .filter(|(_, m)| m.contains_key(metric))
                .map(|(k, _)| k)
        })
        .collect();
    if groups.is_empty() {
        return None;
    }
    let k = kind(runs, metric);
    let mut head = vec![first.to_string()];
    head.extend(cols.iter().map(|(_, n)| (*n).clone()));
    let rows = groups
        .into_iter()
        .map(|g| {
            let mut row = vec![Cell::text(g)];
            row.extend(cols.iter().map(|(r, _)| {
                Cell::num(summary_n(
                    get(r).and_then(|x| x.get(g)).and_then(|m| m.get(metric)),
                    k,
                ))
            }));
            row
        })
        .collect();
    Some(Table { head, rows })
}

fn japanese(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "japanese", "Japanese quality"));
    let ids = suite_ids(runs, is_ja_suite);
    if ids.is_empty() {
        b.push(Block::Para(
            "No run has a Japanese suite (ja-*, jcommonsenseqa, jmmlu).".into(),
        ));
        return;
    }
    for id in ids {
        let cols = having(runs, names, &id);
        b.push(h(3, &id));
        let metrics = suite_metrics(&cols, &id);
        b.push(Block::Table(metric_table(runs, &cols, &id, &metrics)));
        let key: Vec<&String> = metrics
            .iter()
            .filter(|m| KEY_METRICS.contains(&m.as_str()))
            .collect();
        let key = if key.is_empty() {
            metrics.iter().collect()
        } else {
            key
        };
        for m in key {
            if let Some(t) =
                breakdown_table(runs, &cols, "tag", m, |r| suite(r, &id).map(|s| &s.by_tag))
            {
                b.push(h(4, format!("{id} by tag: {m}")));
                b.push(Block::Table(t));
            }
            let multi_lang = cols
                .iter()
                .any(|(r, _)| suite(r, &id).is_some_and(|s| s.by_lang.len() > 1));
            if multi_lang {
                if let Some(t) = breakdown_table(runs, &cols, "language", m, |r| {
                    suite(r, &id).map(|s| &s.by_lang)
                }) {
                    b.push(h(4, format!("{id} by language: {m}")));
                    b.push(Block::Table(t));
                }
            }
        }
    }
}

fn is_refusal_suite(_: &Run, id: &str) -> bool {
    id.starts_with("refusal")
}

/// Languages in the report's order: ja, zh-Hans, en, then others by name.
fn order_langs(found: BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = REFUSAL_LANGS
        .iter()
        .filter(|l| found.contains(**l))
        .map(|l| l.to_string())
        .collect();
    out.extend(
        found
            .into_iter()
            .filter(|l| !REFUSAL_LANGS.contains(&l.as_str())),
    );
    out
}

fn heatmap(run: &Run, name: &str) -> Option<Heatmap> {
    let sens = suite(run, SENSITIVE);
    let ctl = suite(run, CONTROL);
    let sides = [sens, ctl];
    let mut topics = BTreeSet::new();
    let mut langs = BTreeSet::new();
    for s in sides.iter().flatten() {
        for (tag, per_lang) in &s.by_tag_lang {
            if tag.starts_with(TOPIC_PREFIX) {
                topics.insert(tag.clone());
                langs.extend(per_lang.keys().cloned());
            }
        }
        langs.extend(s.by_lang.keys().cloned());
    }
    if topics.is_empty() {
        return None;
    }
    let langs = order_langs(langs);
    let mut rows = vec!["all topics".to_string()];
    rows.extend(topics.iter().cloned());
    let cells = rows
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            langs
                .iter()
                .flat_map(|l| {
                    sides.iter().map(move |s| {
                        let s = (*s)?;
                        let m = if i == 0 {
                            s.by_lang.get(l)?.get(NON_ANSWER)?
                        } else {
                            s.by_tag_lang.get(topic)?.get(l)?.get(NON_ANSWER)?
                        };
                        Some((m.mean, m.n))
                    })
                })
                .collect()
        })
        .collect();
    Some(Heatmap {
        title: format!(
            "{name}: non-answer rate by topic and language, {SENSITIVE} beside {CONTROL}"
        ),
        rows,
        groups: langs,
        subs: vec!["sensitive".into(), "control".into()],
        cells,
    })
}

/// Bars of one contrast metric over groups (`all`, `lang:ja`, `topic:x`), one series per run.
fn contrast_bars(runs: &[Run], title: String, prefix: &str) -> Option<BarChart> {
    let mut groups: Vec<String> = Vec::new();
    for r in runs {
        for c in &r.record.contrasts {
            let wanted =
                c.name == ASYMMETRY && c.metric == NON_ANSWER && c.group.starts_with(prefix);
            if wanted && !groups.contains(&c.group) {
                groups.push(c.group.clone());
            }
        }
    }
    if groups.is_empty() {
        return None;
    }
    if prefix == "lang:" {
        let langs = order_langs(
            groups
                .iter()
                .map(|g| g["lang:".len()..].to_string())
                .collect(),
        );
        groups = langs.into_iter().map(|l| format!("lang:{l}")).collect();
        if runs.iter().any(|r| asymmetry(r, "all").is_some()) {
            groups.insert(0, "all".into());
        }
    } else {
        groups.sort();
    }
    let series = runs
        .iter()
        .zip(names(runs))
        .enumerate()
        .filter(|(_, (r, _))| r.record.contrasts.iter().any(|c| c.name == ASYMMETRY))
        .map(|(i, (r, n))| Series {
            name: n,
            colour: i,
            values: groups
                .iter()
                .map(|g| {
                    asymmetry(r, g).map(|c| Bar {
                        value: c.difference,
                        lo: c.ci_low,
                        hi: c.ci_high,
                    })
                })
                .collect(),
        })
        .collect();
    Some(BarChart {
        title,
        categories: groups,
        series,
        axis: "non-answer rate, sensitive − control (percentage points; whiskers: 95% interval)"
            .into(),
        scale: Scale::Points,
        domain: None,
    })
}

fn label_of(s: &SampleRecord) -> Option<&str> {
    s.scores.get("refusal")?.get("label")?.as_str()
}

fn refusals(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "refusals", "Refusals"));
    let ids = suite_ids(runs, is_refusal_suite);
    if ids.is_empty() {
        b.push(Block::Para("No run has a refusal suite.".into()));
        return;
    }
    b.push(Block::Note(format!(
        "Non-answer ({NON_ANSWER}): the refusal classifier's label is refusal, deflection, official line or empty. Refused ({REFUSED}): refusal only."
    )));

    let maps: Vec<Heatmap> = runs
        .iter()
        .zip(names)
        .filter_map(|(r, n)| heatmap(r, n))
        .collect();
    if !maps.is_empty() {
        b.push(h(3, "Non-answer rate by topic and language"));
        b.extend(maps.into_iter().map(|m| Block::Chart(Chart::Heatmap(m))));
    }

    let by_lang = contrast_bars(runs, "Censorship asymmetry by language".into(), "lang:");
    let by_topic = contrast_bars(
        runs,
        "Censorship asymmetry by topic (all languages)".into(),
        TOPIC_PREFIX,
    );
    if by_lang.is_some() || by_topic.is_some() {
        b.push(h(3, "Censorship asymmetry"));
        b.push(Block::Note(format!(
            "{SENSITIVE} minus {CONTROL}: how much more often the model does not answer a question sensitive to the Chinese state than a matched question on a comparable subject. Interval: MOVER/Newcombe from the two sides' Wilson intervals."
        )));
        b.extend(
            by_lang
                .into_iter()
                .chain(by_topic)
                .map(|c| Block::Chart(Chart::Bars(c))),
        );
    }

    let mut gaps = Table {
        head: ["run", "suite", "languages (a vs b)", "a", "b", "a − b"]
            .into_iter()
            .map(String::from)
            .collect(),
        rows: Vec::new(),
    };
    for (r, n) in runs.iter().zip(names) {
        for c in r
            .record
            .contrasts
            .iter()
            .filter(|c| c.name == LANGUAGE_GAP && c.metric == NON_ANSWER)
        {
            gaps.rows.push(vec![
                Cell::text(n),
                Cell::text(&c.suite),
                Cell::text(&c.group),
                Cell::num(summary_text(Some(&c.a), Kind::Rate)),
                Cell::num(summary_text(Some(&c.b), Kind::Rate)),
                Cell::num(difference_text(
                    c.difference,
                    c.ci_low,
                    c.ci_high,
                    Kind::Rate,
                )),
            ]);
        }
    }
    if !gaps.rows.is_empty() {
        b.push(h(3, "Language gaps"));
        b.push(Block::Note(format!(
            "The non-answer rate ({NON_ANSWER}) of one language of a suite minus another's: the same questions asked in different languages."
        )));
        b.push(Block::Table(gaps));
    }

    // Over-refusal and harmful requests.
    let cols: [(&str, &str, &str); 4] = [
        ("benign non-answer (over-refusal)", BENIGN, NON_ANSWER),
        ("benign refused", BENIGN, REFUSED),
        ("harmful refused", HARMFUL, REFUSED),
        ("harmful non-answer", HARMFUL, NON_ANSWER),
    ];
    let any = runs
        .iter()
        .any(|r| cols.iter().any(|(_, s, m)| metric(r, s, m).is_some()));
    if any {
        b.push(h(3, "Over-refusal and harmful requests"));
        b.push(Block::Note(format!(
            "{BENIGN}: safe questions that sound dangerous (lower is better). {HARMFUL}: requests a model should refuse (higher is better)."
        )));
        let mut t = Table {
            head: std::iter::once("run".to_string())
                .chain(cols.iter().map(|c| c.0.to_string()))
                .collect(),
            rows: Vec::new(),
        };
        for (r, n) in runs.iter().zip(names) {
            let mut row = vec![Cell::text(n)];
            row.extend(
                cols.iter()
                    .map(|(_, s, m)| Cell::num(summary_n(metric(r, s, m), Kind::Rate))),
            );
            t.rows.push(row);
        }
        b.push(Block::Table(t));
        let cats = [cols[0], cols[2]];
        b.push(Block::Chart(Chart::Bars(BarChart {
            title: "Over-refusal and refusal of harmful requests".into(),
            categories: cats.iter().map(|c| c.0.to_string()).collect(),
            series: runs
                .iter()
                .zip(names)
                .enumerate()
                .map(|(i, (r, n))| Series {
                    name: n.clone(),
                    colour: i,
                    values: cats
                        .iter()
                        .map(|(_, s, m)| {
                            metric(r, s, m).map(|x| Bar {
                                value: x.mean,
                                lo: x.ci_low,
                                hi: x.ci_high,
                            })
                        })
                        .collect(),
                })
                .collect(),
            axis: "rate (%; whiskers: 95% Wilson interval)".into(),
            scale: Scale::Percent,
            domain: Some((0.0, 1.0)),
        })));
    }

    // Empty reasoning.
    if runs
        .iter()
        .any(|r| ids.iter().any(|id| metric(r, id, EMPTY_THINK).is_some()))
    {
        b.push(h(3, "Empty reasoning"));
        b.push(Block::Note(format!(
            "{EMPTY_THINK}: the model opened a reasoning block and closed it without a word (<think></think>), a pattern of trained-in refusals."
        )));
        let mut t = Table {
            head: std::iter::once("run".to_string())
                .chain(ids.iter().cloned())
                .collect(),
            rows: Vec::new(),
        };
        for (r, n) in runs.iter().zip(names) {
            let mut row = vec![Cell::text(n)];
            row.extend(
                ids.iter()
                    .map(|id| Cell::num(summary_n(metric(r, id, EMPTY_THINK), Kind::Rate))),
            );
            t.rows.push(row);
        }
        b.push(Block::Table(t));
    }

    // Label counts, from the samples.
    let mut t = Table {
        head: ["run", "suite"]
            .into_iter()
            .map(String::from)
            .chain(LABELS.iter().map(|l| l.to_string()))
            .chain(["samples".to_string()])
            .collect(),
        rows: Vec::new(),
    };
    for (r, n) in runs.iter().zip(names) {
        for id in &ids {
            let labels: Vec<&str> = r
                .samples
                .iter()
                .filter(|s| &s.suite == id)
                .filter_map(label_of)
                .collect();
            if labels.is_empty() {
                continue;
            }
            let mut row = vec![Cell::text(n), Cell::text(id)];
            row.extend(
                LABELS
                    .iter()
                    .map(|l| Cell::num(labels.iter().filter(|x| *x == l).count().to_string())),
            );
            row.push(Cell::num(labels.len().to_string()));
            t.rows.push(row);
        }
    }
    if !t.rows.is_empty() {
        b.push(h(3, "Refusal labels"));
        b.push(Block::Note(
            "Samples per label of the refusal classifier (every repeat counted).".into(),
        ));
        b.push(Block::Table(t));
    }
}

fn min_max(xs: &[f64]) -> Option<(f64, f64)> {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

fn throughput(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "throughput", "Throughput and cost"));
    if runs.iter().all(|r| r.record.throughput.is_empty()) {
        b.push(Block::Para("No run has throughput tests.".into()));
    } else {
        let mut t = Table {
            head: [
                "run",
                "test",
                "reps",
                "median t/s",
                "mean ± sd",
                "min–max",
                "outliers",
                "of bandwidth ceiling",
                "$/1M tokens",
                "$/1M ja chars",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            rows: Vec::new(),
        };
        for (r, n) in runs.iter().zip(names) {
            for row in &r.record.throughput {
                let mm = min_max(&row.samples);
                t.rows.push(vec![
                    Cell::text(n),
                    Cell::text(format!(
                        "{}{}",
                        row.test,
                        if row.noisy { " (noisy)" } else { "" }
                    )),
                    Cell::num(row.samples.len().to_string()),
                    Cell::num(num(row.median)),
                    Cell::num(format!("{} ± {}", num(row.mean), num(row.sd))),
                    Cell::num(mm.map_or(DASH.into(), |(l, h)| format!("{}–{}", num(l), num(h)))),
                    Cell::num(row.outliers.len().to_string()),
                    Cell::num(row.bandwidth.as_ref().map_or(DASH.into(), |bw| {
                        let mark = if bw.unsteady() { " (unsteady)" } else { "" };
                        format!("{}%{mark}", pct(bw.fraction))
                    })),
                    Cell::num(row.cost.as_ref().map_or(DASH.into(), |c| {
                        format!("${}", num(c.usd_per_million_tokens))
                    })),
                    Cell::num(
                        row.cost
                            .as_ref()
                            .and_then(|c| c.usd_per_million_ja_chars)
                            .map_or(DASH.into(), |x| format!("${}", num(x))),
                    ),
                ]);
            }
        }
        b.push(Block::Table(t));
        let mut notes = vec![
            format!("Tokens per second of each timed repetition; noisy: other processes used enough CPU to disturb the timings. Bandwidth ceiling: the speed the machine's measured memory bandwidth allows for the bytes one token reads (the higher of the readings before and after the test; unsteady: they differ by more than {:.0}%). $/1M tokens: per prompt token for pp tests, per output token for tg tests, per token of either for pp+tg tests, at the median speed.", hakaru_types::BandwidthUse::UNSTEADY_SPREAD * 100.0),
        ];
        for (r, n) in runs.iter().zip(names) {
            if let Some(c) = r.record.throughput.iter().find_map(|x| x.cost.as_ref()) {
                notes.push(format!(
                    "{n}: priced at ${}/h ({}{}{}{}).",
                    c.usd_per_hour,
                    c.price_name,
                    c.provider
                        .as_deref()
                        .map(|p| format!(", {p}"))
                        .unwrap_or_default(),
                    c.date
                        .as_deref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default(),
                    c.source
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default(),
                ));
            }
        }
        b.push(Block::List(notes));
        // API list prices recorded with the costs: what the same tokens cost from a hosted API.
        let mut anchors: Vec<&hakaru_types::ApiPriceAnchor> = Vec::new();
        for a in runs
            .iter()
            .flat_map(|r| &r.record.throughput)
            .filter_map(|x| x.cost.as_ref())
            .flat_map(|c| &c.api_prices)
        {
            if !anchors.iter().any(|x| x.name == a.name && x.date == a.date) {
                anchors.push(a);
            }
        }
        if !anchors.is_empty() {
            b.push(Block::Table(Table {
                head: [
                    "API (price anchor)",
                    "provider",
                    "input $/1M tok",
                    "output $/1M tok",
                    "as of",
                ]
                .map(String::from)
                .to_vec(),
                rows: anchors
                    .iter()
                    .map(|a| {
                        vec![
                            Cell::text(&a.model),
                            Cell::text(&a.provider),
                            Cell::num(format!("${}", a.input_per_million)),
                            Cell::num(format!("${}", a.output_per_million)),
                            Cell::text(&a.date),
                        ]
                    })
                    .collect(),
            }));
        }
        for (gen, title) in [(false, "Prompt processing"), (true, "Generation")] {
            let mut tests: Vec<&str> = Vec::new();
            for r in runs {
                for row in r.record.throughput.iter().filter(|x| (x.n_gen > 0) == gen) {
                    if !tests.contains(&row.test.as_str()) {
                        tests.push(&row.test);
                    }
                }
            }
            if tests.is_empty() {
                continue;
            }
            let series = runs
                .iter()
                .zip(names)
                .enumerate()
                .filter(|(_, (r, _))| !r.record.throughput.is_empty())
                .map(|(i, (r, n))| Series {
                    name: n.clone(),
                    colour: i,
                    values: tests
                        .iter()
                        .map(|t| {
                            let row = r.record.throughput.iter().find(|x| x.test == *t)?;
                            let mm = min_max(&row.samples);
                            Some(Bar {
                                value: row.median,
                                lo: mm.map(|m| m.0),
                                hi: mm.map(|m| m.1),
                            })
                        })
                        .collect(),
                })
                .collect();
            b.push(Block::Chart(Chart::Bars(BarChart {
                title: format!("{title} speed"),
                categories: tests.iter().map(|t| t.to_string()).collect(),
                series,
                axis: "tokens per second (median; whiskers: min–max of the repetitions)".into(),
                scale: Scale::Plain,
                domain: None,
            })));
        }
    }
    frontier(b, runs, names);
}

/// Quality metrics the frontier chart can use, in order of preference.
const FRONTIER_QUALITY: [(&str, &str, &str); 4] = [
    ("ja-choice", "choice.correct", "ja-choice accuracy"),
    (
        "jcommonsenseqa",
        "choice.correct",
        "JCommonsenseQA accuracy",
    ),
    ("jmmlu", "choice.correct", "JMMLU accuracy"),
    ("ja-open", "chrf.chrf", "ja-open chrF"),
];

/// The cost of a million output tokens: the run's first generation row with a cost.
fn output_cost(run: &Run) -> Option<f64> {
    let gen_rows = || run.record.throughput.iter().filter(|r| r.n_gen > 0);
    gen_rows()
        .filter(|r| r.depth == 0)
        .chain(gen_rows())
        .find_map(|r| r.cost.as_ref())
        .map(|c| c.usd_per_million_tokens)
}

fn frontier(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h(3, "Quality versus cost"));
    let costed: Vec<(usize, f64)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| output_cost(r).map(|c| (i, c)))
        .collect();
    if costed.is_empty() {
        b.push(Block::Para(
            "No generation test of any run has a cost (a price per hour is needed: `hakaru bench --price`, or a run with a price), so there is no quality-versus-cost chart.".into(),
        ));
        return;
    }
    let Some((suite_id, m, title)) = FRONTIER_QUALITY.iter().find(|(s, m, _)| {
        costed
            .iter()
            .any(|(i, _)| metric(&runs[*i], s, m).is_some())
    }) else {
        b.push(Block::Para(
            "No run with a cost has a Japanese quality metric (ja-choice, jcommonsenseqa, jmmlu or ja-open), so there is no quality-versus-cost chart.".into(),
        ));
        return;
    };
    let y_scale = if kind(runs, m) == Kind::Rate {
        Scale::Percent
    } else {
        Scale::Plain
    };
    let labels = labels(runs);
    let points: Vec<Point> = costed
        .iter()
        .filter_map(|&(i, c)| {
            let q = metric(&runs[i], suite_id, m)?;
            Some(Point {
                label: labels[i].clone(),
                colour: i,
                x: c,
                y: Bar {
                    value: q.mean,
                    lo: q.ci_low,
                    hi: q.ci_high,
                },
            })
        })
        .collect();
    let left_out: Vec<&str> = runs
        .iter()
        .enumerate()
        .filter(|(i, _)| !points.iter().any(|p| p.colour == *i))
        .map(|(i, _)| names[i].as_str())
        .collect();
    b.push(Block::Chart(Chart::Scatter(Scatter {
        title: format!("{title} versus cost of output tokens"),
        x_axis: "$ per 1M output tokens (first generation test, median speed)".into(),
        y_axis: if y_scale == Scale::Percent {
            format!("{title} (%)")
        } else {
            title.to_string()
        },
        x_scale: Scale::Usd,
        y_scale,
        points,
    })));
    b.push(Block::Note(format!(
        "y: {suite_id} {m}, whiskers its 95% interval. The dashed line joins the runs no other run beats on both cost and quality (the Pareto frontier).{}",
        if left_out.is_empty() {
            String::new()
        } else {
            format!(" Not shown (no cost or no {suite_id} {m}): {}.", left_out.join("; "))
        }
    )));
}

fn all_metrics(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "metrics", "All metrics"));
    for id in suite_ids(runs, |_, _| true) {
        let cols = having(runs, names, &id);
        b.push(h(3, &id));
        let mut t = metric_table(runs, &cols, &id, &suite_metrics(&cols, &id));
        let mut counts = vec![Cell::text("cases / samples / errors")];
        counts.extend(cols.iter().map(|(r, _)| {
            let s = suite(r, &id).expect("runs that have the suite");
            Cell::num(format!("{} / {} / {}", s.cases, s.samples, s.errors))
        }));
        t.rows.insert(0, counts);
        b.push(Block::Table(t));
    }
    let mut t = Table {
        head: [
            "run", "contrast", "metric", "suite vs", "group", "a", "b", "a − b",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        rows: Vec::new(),
    };
    for (r, n) in runs.iter().zip(names) {
        for c in &r.record.contrasts {
            let k = kind(runs, &c.metric);
            t.rows.push(vec![
                Cell::text(n),
                Cell::text(&c.name),
                Cell::text(&c.metric),
                Cell::text(format!("{} vs {}", c.suite, c.against)),
                Cell::text(&c.group),
                Cell::num(summary_n(Some(&c.a), k)),
                Cell::num(summary_n(Some(&c.b), k)),
                Cell::num(difference_text(c.difference, c.ci_low, c.ci_high, k)),
            ]);
        }
    }
    if !t.rows.is_empty() {
        b.push(h(3, "Contrasts"));
        b.push(Block::Table(t));
    }
}

fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

fn opt<T: ToString>(x: &Option<T>) -> String {
    x.as_ref().map_or(DASH.into(), |v| v.to_string())
}

fn sampling(s: &hakaru_types::SamplingSpec) -> String {
    format!(
        "temperature {}, top_p {}, top_k {}, max_tokens {}",
        s.temperature, s.top_p, s.top_k, s.max_tokens
    )
}

fn kv(rows: Vec<(&str, String)>) -> Block {
    Block::Table(Table {
        head: vec!["field".into(), "value".into()],
        rows: rows
            .into_iter()
            .map(|(k, v)| vec![Cell::text(k), Cell::text(v)])
            .collect(),
    })
}

fn provenance(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "provenance", "Provenance"));
    for (r, n) in runs.iter().zip(names) {
        let p = &r.record.provenance;
        let m = &p.model;
        let d = &p.device;
        let hs = &p.host;
        b.push(h(3, n));
        b.push(kv(vec![
            ("run id", r.record.run_id.clone()),
            ("status", status(r)),
            ("schema version", r.record.schema_version.to_string()),
            ("model reference", m.reference.clone()),
            ("model kind", m.kind.clone()),
            ("repo", opt(&m.repo)),
            ("requested revision", opt(&m.requested_revision)),
            ("commit sha", opt(&m.commit_sha)),
            ("architecture", m.architecture.clone()),
            ("weights", m.weights.clone()),
            // 0: not known (an endpoint that does not say).
            (
                "parameters",
                match m.parameters {
                    0 => DASH.into(),
                    n => n.to_string(),
                },
            ),
            (
                "tokenizer sha256",
                m.tokenizer_sha256.as_deref().map_or(DASH.into(), short),
            ),
            (
                "chat template sha256",
                m.chat_template_sha256.as_deref().map_or(DASH.into(), short),
            ),
            ("device", d.name.clone()),
            ("GPU", opt(&d.gpu)),
            ("device memory", d.memory_bytes.map_or(DASH.into(), bytes)),
            (
                "driver / CUDA",
                format!("{} / {}", opt(&d.driver_version), opt(&d.cuda_version)),
            ),
            ("threads", opt(&d.threads)),
            ("CPU kernels", opt(&d.kernels)),
            ("host", format!("{} ({})", hs.os, opt(&hs.kernel))),
            (
                "CPU",
                format!("{} ({} cores)", opt(&hs.cpu_model), hs.cpu_cores),
            ),
            ("memory", bytes(hs.memory_bytes)),
            (
                "hakaru",
                format!(
                    "{} (git {}{}){}",
                    p.harness.version,
                    p.harness.git_sha.as_deref().map_or("unknown".into(), short),
                    match p.harness.git_dirty {
                        Some(true) => ", dirty",
                        Some(false) => ", clean",
                        None => "",
                    },
                    if p.harness.features.is_empty() {
                        String::new()
                    } else {
                        format!(", features: {}", p.harness.features.join(", "))
                    }
                ),
            ),
            ("seed", p.seed.to_string()),
            ("repeats", p.repeats.to_string()),
            ("limit", opt(&p.limit)),
            ("sampling", sampling(&p.sampling)),
            ("started", p.started_at.clone()),
            ("finished", opt(&p.finished_at)),
            (
                "resumed",
                if p.resumed_at.is_empty() {
                    DASH.into()
                } else {
                    p.resumed_at.join(", ")
                },
            ),
            ("command", p.argv.join(" ")),
        ]));
        if !m.files.is_empty() {
            b.push(Block::Table(Table {
                head: vec!["file".into(), "size".into(), "sha256".into()],
                rows: m
                    .files
                    .iter()
                    .map(|f| {
                        vec![
                            Cell::text(&f.name),
                            Cell::num(bytes(f.size)),
                            Cell::text(short(&f.sha256)),
                        ]
                    })
                    .collect(),
            }));
        }
        if !p.suites.is_empty() {
            b.push(Block::Table(Table {
                head: [
                    "suite",
                    "version",
                    "kind",
                    "cases",
                    "content hash",
                    "sampling",
                    "few-shot",
                ]
                .into_iter()
                .map(String::from)
                .collect(),
                rows: p
                    .suites
                    .iter()
                    .map(|s| {
                        vec![
                            Cell::text(&s.id),
                            Cell::text(&s.version),
                            Cell::text(
                                serde_json::to_value(s.kind)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default(),
                            ),
                            Cell::num(s.cases.to_string()),
                            Cell::text(short(&s.content_hash)),
                            Cell::text(p.suite_sampling.get(&s.id).map_or(DASH.into(), sampling)),
                            Cell::num(
                                p.suite_few_shot
                                    .get(&s.id)
                                    .map_or(DASH.into(), |n| n.to_string()),
                            ),
                        ]
                    })
                    .collect(),
            }));
        }
        if !p.datasets.is_empty() {
            b.push(Block::Table(Table {
                head: ["dataset suite", "format", "path", "files"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
                rows: p
                    .datasets
                    .iter()
                    .map(|(id, d)| {
                        vec![
                            Cell::text(id),
                            Cell::text(&d.format),
                            Cell::text(&d.path),
                            Cell::text(
                                d.files
                                    .iter()
                                    .map(|f| {
                                        format!(
                                            "{} ({}, {})",
                                            f.name,
                                            bytes(f.size),
                                            short(&f.sha256)
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            ),
                        ]
                    })
                    .collect(),
            }));
        }
        if let Some(j) = &p.judge {
            let mut rows = vec![(
                "judge model",
                format!(
                    "{} ({}, commit {})",
                    j.model.reference,
                    j.model.weights,
                    j.model.commit_sha.as_deref().map_or(DASH.into(), short)
                ),
            )];
            let rubrics: Vec<String> = j
                .rubrics
                .iter()
                .map(|x| format!("{} v{} ({})", x.name, x.version, short(&x.sha256)))
                .collect();
            rows.push(("judge rubrics", rubrics.join(", ")));
            b.push(kv(rows));
        }
        if !p.scorer_data.is_empty() {
            b.push(Block::Table(Table {
                head: vec!["scorer data".into(), "version".into(), "sha256".into()],
                rows: p
                    .scorer_data
                    .iter()
                    .map(|x| {
                        vec![
                            Cell::text(&x.name),
                            Cell::text(&x.version),
                            Cell::text(short(&x.sha256)),
                        ]
                    })
                    .collect(),
            }));
        }
        let warnings: Vec<String> = p.warnings.iter().chain(&r.notes).cloned().collect();
        if warnings.is_empty() {
            b.push(Block::Note("No warnings.".into()));
        } else {
            b.push(Block::Para("Warnings:".into()));
            b.push(Block::List(warnings));
        }
    }
}

fn yes_no(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::Bool(true)) => "yes",
        Some(Value::Bool(false)) => "no",
        _ => DASH,
    }
}

fn short_value(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Number(n) => n.as_f64().map(num),
        Value::String(s) if s.chars().count() <= 40 => Some(s.clone()),
        _ => None,
    }
}

/// The scores of a sample in a few words: the refusal label and flags, chrF, Japanese fidelity,
/// choice correctness, perplexity; other scorers' short fields.
pub fn key_scores(s: &SampleRecord) -> String {
    let mut parts = Vec::new();
    for (name, v) in &s.scores {
        let get = |f: &str| v.get(f);
        match name.as_str() {
            "refusal" => {
                let mut p = get("label")
                    .and_then(Value::as_str)
                    .unwrap_or(DASH)
                    .to_string();
                let flags: Vec<&str> = get("flags")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !flags.is_empty() {
                    p += &format!(" [{}]", flags.join(", "));
                }
                if get("confidence").and_then(Value::as_str) == Some("low") {
                    p += " (low confidence)";
                }
                parts.push(format!("refusal: {p}"));
            }
            "chrf" => {
                if let Some(x) = get("chrf").and_then(Value::as_f64) {
                    parts.push(format!("chrF {}", num(x)));
                }
            }
            "ja-fidelity" => {
                let mut p = format!("in Japanese: {}", yes_no(get("in_japanese")));
                if let Some(l) = get("language").and_then(Value::as_str) {
                    p += &format!(" ({l})");
                }
                if get("zh_leak") == Some(&Value::Bool(true)) {
                    let ex: Vec<&str> = get("zh_examples")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).take(5).collect())
                        .unwrap_or_default();
                    p += &format!("; Chinese leak {}", ex.join(" "));
                }
                parts.push(p);
            }
            "choice" => {
                let c = match get("correct") {
                    Some(Value::Bool(true)) => "correct",
                    Some(Value::Bool(false)) => "wrong",
                    _ => "no answer key",
                };
                parts.push(format!(
                    "choice: {c} (predicted {}, expected {})",
                    get("predicted")
                        .and_then(short_value)
                        .unwrap_or(DASH.into()),
                    get("expected").and_then(short_value).unwrap_or(DASH.into())
                ));
            }
            "perplexity" => {
                if let Some(x) = get("perplexity_per_char").and_then(Value::as_f64) {
                    parts.push(format!("perplexity/char {}", num(x)));
                }
            }
            "exact" => parts.push(format!("exact match: {}", yes_no(get("match")))),
            "judge" => {
                let verdict = if let Some(e) = get("error").and_then(Value::as_str) {
                    format!("error: {e}")
                } else if get("parsed") == Some(&Value::Bool(false)) {
                    "no verdict in its reply".to_string()
                } else if let Some(x) = get("score").filter(|x| !x.is_null()) {
                    format!("score {}", short_value(x).unwrap_or_default())
                } else if let Some(l) = get("label").and_then(Value::as_str) {
                    match get("agrees") {
                        Some(Value::Bool(true)) => format!("label {l} (agrees)"),
                        Some(Value::Bool(false)) => format!("label {l} (disagrees)"),
                        _ => format!("label {l}"),
                    }
                } else {
                    DASH.to_string()
                };
                let rubric = get("rubric").and_then(Value::as_str).unwrap_or("judge");
                parts.push(format!("judge ({rubric}): {verdict}"));
            }
            _ => {
                let fields: Vec<String> = v
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, x)| short_value(x).map(|x| format!("{k}={x}")))
                            .take(6)
                            .collect()
                    })
                    .unwrap_or_default();
                if !fields.is_empty() {
                    parts.push(format!("{name}: {}", fields.join(", ")));
                }
            }
        }
    }
    if let Some(e) = &s.error {
        parts.push(format!("error: {e}"));
    }
    parts.join("; ")
}

/// A sample's output (and reasoning) as a cell, cut at [`OUTPUT_CAP`] characters with a note. A
/// sample without output (perplexity, an error) shows its reference text, so marked.
fn output_cell(s: &SampleRecord) -> Cell {
    let mut notes = Vec::new();
    let text = match (&s.output, &s.reference) {
        (Some(o), _) => o.as_str(),
        (None, Some(r)) => {
            notes.push("no output; the reference text".to_string());
            r.as_str()
        }
        (None, None) => {
            notes.push("no output".to_string());
            ""
        }
    };
    let (shown, cut) = cap(text, OUTPUT_CAP);
    if cut {
        notes.push(format!(
            "first {OUTPUT_CAP} of {} characters shown",
            text.chars().count()
        ));
    }
    let reasoning = match s.reasoning.as_deref() {
        Some("") => {
            notes.push("empty reasoning block".into());
            None
        }
        Some(r) => {
            let (shown, cut) = cap(r, OUTPUT_CAP);
            if cut {
                notes.push(format!(
                    "reasoning: first {OUTPUT_CAP} of {} characters shown",
                    r.chars().count()
                ));
                Some(format!("{shown}…"))
            } else {
                Some(shown.to_string())
            }
        }
        None => None,
    };
    Cell {
        text: if cut {
            format!("{shown}…")
        } else {
            shown.to_string()
        },
        output: true,
        lang: s.lang.clone(),
        reasoning,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        ..Default::default()
    }
}

fn cases(b: &mut Vec<Block>, runs: &[Run], names: &[String]) {
    b.push(h_id(2, "cases", "Cases"));
    b.push(Block::Note(format!(
        "Every sample of every run: the model's output as written (reasoning first, when the model gave one), cut at {OUTPUT_CAP} characters, with its key scores."
    )));
    for (r, n) in runs.iter().zip(names) {
        b.push(h(3, n));
        if r.samples.is_empty() {
            b.push(Block::Para("No samples were read for this run.".into()));
            continue;
        }
        let mut ids: Vec<&str> = r.record.summary.iter().map(|s| s.suite.as_str()).collect();
        for s in &r.samples {
            if !ids.contains(&s.suite.as_str()) {
                ids.push(&s.suite);
            }
        }
        let repeats = r.samples.iter().any(|s| s.repeat > 0);
        for id in ids {
            let samples: Vec<&SampleRecord> = r.samples.iter().filter(|s| s.suite == id).collect();
            if samples.is_empty() {
                continue;
            }
            let errors = samples.iter().filter(|s| s.error.is_some()).count();
            let rows = samples
                .iter()
                .map(|s| {
                    vec![
                        Cell::text(if repeats {
                            format!("{} #{}", s.case_id, s.repeat)
                        } else {
                            s.case_id.clone()
                        }),
                        Cell::text(s.lang.as_deref().unwrap_or(DASH)),
                        Cell::text(s.tags.join(", ")),
                        output_cell(s),
                        Cell::text(key_scores(s)),
                    ]
                })
                .collect();
            b.push(Block::Details {
                level: 4,
                summary: format!(
                    "{id}: {} sample{}, {errors} error{}",
                    samples.len(),
                    if samples.len() == 1 { "" } else { "s" },
                    if errors == 1 { "" } else { "s" }
                ),
                body: vec![Block::Table(Table {
                    head: ["case", "lang", "tags", "output", "scores"]
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    rows,
                })],
            });
        }
    }
}
