//! The files in `dashboards/` match the engine: every Grafana dashboard is in the shareable
//! form (import and file provisioning both work), every panel query and alert rule parses
//! as `PromQL` once Grafana's variables are substituted, and every metric they name is one
//! the engine really exports — taken from a render of a local recorder after exercising
//! every code path that records something, not from a hand-kept list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use rocklog::metrics as m;
use rocklog::{Config, Entry, HardState, LogId, LogStore};
use serde_json::Value;

/// The datasource uid every panel, target and query variable must use.
const DS: &str = "${DS_PROMETHEUS}";
/// Labels Prometheus attaches to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// Exported series names (`_bucket`/`_sum`/`_count` for histograms) and the labels each
/// carries, from the Prometheus text rendering.
type Exported = BTreeMap<String, BTreeSet<String>>;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `dashboards/*.json`, parsed, with its file name.
fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: invalid JSON: {e}"));
            out.push((name, json));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no dashboards/*.json found");
    out
}

/// What the engine exports, rendered once per test binary.
fn exported() -> &'static Exported {
    static EXPORTED: OnceLock<Exported> = OnceLock::new();
    EXPORTED.get_or_init(render_exercised_engine)
}

/// Opens an engine inside a local recorder, drives every path that records a metric, and
/// parses the series names and label names out of the rendering.
fn render_exercised_engine() -> Exported {
    let recorder = rocklog::metrics::prometheus_builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().unwrap();
    let store = metrics::with_local_recorder(&recorder, || LogStore::start(Config::new(dir.path()))).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Appends from a few tasks at once: commits, batches, queue depth, write latency.
        let mut tasks = Vec::new();
        for g in 0..4u64 {
            let group = store.group(g);
            tasks.push(tokio::spawn(async move {
                for i in 1..=20u64 {
                    group.append(&[Entry::new(i, 1, format!("g{g} e{i}"))]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let g = store.group(0);
        g.truncate(15).await.unwrap();
        g.purge(LogId::new(1, 3)).await.unwrap();
        // A gap: refused as bad input, nothing written.
        assert!(g.append(&[Entry::new(100, 1, "gap")]).await.is_err());
        store.flush().await.unwrap();
        g.save_hard_state(HardState { term: 1, vote: Some(1), commit: 10 }).await.unwrap();
        assert!(g.entry(5).unwrap().is_some());
        assert_eq!(g.entries(4..10, None).unwrap().len(), 6);
        assert_eq!(g.term(5).unwrap(), Some(1));
        // A failed commit: write errors and the poisoned gauge.
        store.inject_commit_failure();
        assert!(store.group(1).append(&[Entry::new(21, 1, "fails")]).await.is_err());
        assert!(store.is_poisoned());
    });
    drop(store);
    let text = handle.render();

    let mut exported = Exported::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = exported.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            let close = line.rfind('}').unwrap();
            for pair in line[end + 1..close].split(',').filter(|p| !p.is_empty()) {
                labels.insert(pair.split('=').next().unwrap().trim().to_owned());
            }
        }
    }
    // The rendering covers every metric the engine defines, as real histograms.
    for name in [m::COMMITS, m::SYNCS, m::APPENDED_ENTRIES, m::APPENDED_BYTES, m::TRUNCATES, m::PURGES] {
        assert!(exported.contains_key(name), "{name} not rendered:\n{text}");
    }
    for name in [m::REJECTED, m::WRITE_ERRORS, m::POISONED, m::QUEUE_DEPTH] {
        assert!(exported.contains_key(name), "{name} not rendered:\n{text}");
    }
    for base in [
        m::COMMIT_DURATION,
        m::WRITE_LATENCY,
        m::BATCH_COMMANDS,
        m::BATCH_ENTRIES,
        m::BATCH_BYTES,
        m::READ_DURATION,
    ] {
        for suffix in ["_bucket", "_sum", "_count"] {
            assert!(
                exported.contains_key(&format!("{base}{suffix}")),
                "{base}{suffix} not rendered:\n{text}"
            );
        }
    }
    exported
}

/// Replaces Grafana's variables: interval built-ins by `interval`, every other variable
/// (`$job`, `${instance}`, `${instance:regex}`, `[[job]]`) by `other(name)`.
fn substitute(expr: &str, interval: &str, other: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (name, len) = if let Some(body) = tail.strip_prefix("${") {
            let close = body.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
            let inner = &body[..close];
            (inner.split(':').next().unwrap(), close + 3)
        } else if let Some(body) = tail.strip_prefix("[[") {
            let close = body.find("]]").unwrap_or_else(|| panic!("unclosed [[ in {expr}"));
            (body[..close].split(':').next().unwrap(), close + 4)
        } else if let Some(body) = tail.strip_prefix('$') {
            let n = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
            (&body[..n], n + 1)
        } else {
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        match name {
            // A lone `$` (a regex anchor) is not a variable.
            "" => out.push('$'),
            "__rate_interval" | "__interval" | "__range" => out.push_str(interval),
            n if n.starts_with("__") => panic!("unexpected Grafana built-in ${n} in {expr}"),
            n => out.push_str(&other(n)),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// A selector found in a query: its metric name and the matchers it applies.
struct Selector {
    name: String,
    /// (label, is a regex match, value)
    matchers: Vec<(String, bool, String)>,
}

/// Every vector selector in `expr`, and every label named in `by (...)`/`without (...)`.
fn walk(expr: &Expr, selectors: &mut Vec<Selector>, grouping: &mut BTreeSet<String>) {
    use promql_parser::parser::LabelModifier;
    let selector = |vs: &promql_parser::parser::VectorSelector, selectors: &mut Vec<Selector>| {
        let mut all: Vec<&promql_parser::label::Matcher> = vs.matchers.matchers.iter().collect();
        all.extend(vs.matchers.or_matchers.iter().flatten());
        let name = vs
            .name
            .clone()
            .or_else(|| {
                all.iter().find(|m| m.name == "__name__" && m.op == MatchOp::Equal).map(|m| m.value.clone())
            })
            .expect("every selector names its metric");
        let matchers = all
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| (m.name.clone(), matches!(m.op, MatchOp::Re(_) | MatchOp::NotRe(_)), m.value.clone()))
            .collect();
        selectors.push(Selector { name, matchers });
    };
    match expr {
        Expr::Aggregate(a) => {
            if let Some(LabelModifier::Include(l) | LabelModifier::Exclude(l)) = &a.modifier {
                grouping.extend(l.labels.iter().cloned());
            }
            walk(&a.expr, selectors, grouping);
            if let Some(p) = &a.param {
                walk(p, selectors, grouping);
            }
        }
        Expr::Unary(u) => walk(&u.expr, selectors, grouping),
        Expr::Binary(b) => {
            walk(&b.lhs, selectors, grouping);
            walk(&b.rhs, selectors, grouping);
        }
        Expr::Paren(p) => walk(&p.expr, selectors, grouping),
        Expr::Subquery(s) => walk(&s.expr, selectors, grouping),
        Expr::VectorSelector(vs) => selector(vs, selectors),
        Expr::MatrixSelector(ms) => selector(&ms.vs, selectors),
        Expr::Call(c) => {
            for arg in &c.args.args {
                walk(arg, selectors, grouping);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Problems with one query: it must parse (variables substituted), name only exported
/// metrics, filter only on labels those metrics carry, group only by known labels, and
/// use multi-value variables (`$job`, `$instance`: "All" is `.*`) only in regex matchers.
fn check_query(whence: &str, expr: &str, exported: &Exported, problems: &mut Vec<String>) {
    let all_labels: BTreeSet<&str> = exported
        .values()
        .flatten()
        .map(String::as_str)
        .chain(TARGET_LABELS)
        .chain(["le", "quantile"])
        .collect();
    let substituted = substitute(expr, "1m", |_| ".*".to_owned());
    let ast = match parser::parse(&substituted) {
        Ok(ast) => ast,
        Err(e) => {
            problems.push(format!("{whence}: does not parse as PromQL: {e}\n    {substituted}"));
            return;
        }
    };
    let (mut selectors, mut grouping) = (Vec::new(), BTreeSet::new());
    walk(&ast, &mut selectors, &mut grouping);
    if selectors.is_empty() {
        problems.push(format!("{whence}: selects no metric: {expr}"));
    }
    for s in &selectors {
        let Some(labels) = exported.get(&s.name) else {
            problems.push(format!("{whence}: `{}` is not exported by the engine", s.name));
            continue;
        };
        for (label, _, _) in &s.matchers {
            if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                problems.push(format!("{whence}: `{}` has no label `{label}`", s.name));
            }
        }
    }
    for label in &grouping {
        if !all_labels.contains(label.as_str()) {
            problems.push(format!("{whence}: groups by `{label}`, which no series carries"));
        }
    }
    // Variables again, as markers, to see which matchers they end up in.
    let marked = substitute(expr, "1m", |n| format!("VAR_{n}_VAR"));
    if let Ok(ast) = parser::parse(&marked) {
        let (mut selectors, mut grouping) = (Vec::new(), BTreeSet::new());
        walk(&ast, &mut selectors, &mut grouping);
        for s in &selectors {
            for (label, regex, value) in &s.matchers {
                if value.contains("VAR_") && !regex {
                    problems.push(format!(
                        "{whence}: `{label}` takes a multi-value variable with `=`/`!=`; use `=~` \
                         (the All value is `.*`)"
                    ));
                }
            }
        }
    }
}

/// The datasource of a panel, target or variable, as `${DS_PROMETHEUS}` or a problem.
fn check_datasource(whence: &str, ds: Option<&Value>, required: bool, problems: &mut Vec<String>) {
    match ds {
        None if required => problems.push(format!("{whence}: no datasource (would use the default)")),
        None => {}
        Some(Value::String(s)) if s == DS => {}
        Some(v) if v["uid"] == DS && v.get("type").is_none_or(|t| t == "prometheus") => {}
        Some(v) => problems.push(format!("{whence}: datasource {v} is not {DS} of type prometheus")),
    }
}

/// Every panel, rows' nested panels included.
fn all_panels(panels: &[Value]) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(all_panels(nested));
        }
    }
    out
}

fn fail_on(problems: &[String]) {
    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn dashboards_are_in_the_shareable_form() {
    let mut problems = Vec::new();
    for (file, d) in dashboards() {
        for key in ["__inputs", "uid", "title", "panels", "templating"] {
            if d.get(key).is_none_or(Value::is_null) {
                problems.push(format!("{file}: missing `{key}`"));
            }
        }
        for key in ["uid", "title"] {
            if d[key].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{file}: `{key}` must be a non-empty string"));
            }
        }
        let inputs = d["__inputs"].as_array().map(Vec::as_slice).unwrap_or_default();
        if !inputs.iter().any(|i| {
            i["name"] == "DS_PROMETHEUS" && i["type"] == "datasource" && i["pluginId"] == "prometheus"
        }) {
            problems.push(format!("{file}: __inputs lacks the DS_PROMETHEUS prometheus datasource input"));
        }
        let vars = d["templating"]["list"].as_array().map(Vec::as_slice).unwrap_or_default();
        let var = |name: &str| vars.iter().find(|v| v["name"] == name);
        match var("DS_PROMETHEUS") {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            Some(v) => {
                problems.push(format!("{file}: DS_PROMETHEUS variable is not a prometheus datasource: {v}"));
            }
            None => {
                problems.push(format!("{file}: no DS_PROMETHEUS datasource variable (file provisioning)"));
            }
        }
        for name in TARGET_LABELS {
            match var(name) {
                None => problems.push(format!("{file}: no `{name}` variable")),
                Some(v) => {
                    check_datasource(
                        &format!("{file}: variable {name}"),
                        v.get("datasource"),
                        true,
                        &mut problems,
                    );
                    if v["includeAll"] == true && v["allValue"] != ".*" {
                        problems.push(format!("{file}: variable {name}: All must be `.*` for `=~` matchers"));
                    }
                }
            }
        }

        let panels = all_panels(d["panels"].as_array().map(Vec::as_slice).unwrap_or_default());
        if panels.is_empty() {
            problems.push(format!("{file}: no panels"));
        }
        let mut ids = BTreeSet::new();
        for p in &panels {
            let title = p["title"].as_str().unwrap_or("?");
            match p["id"].as_u64() {
                None => problems.push(format!("{file}: panel `{title}` has no numeric id")),
                Some(id) if !ids.insert(id) => problems.push(format!("{file}: panel id {id} is used twice")),
                Some(_) => {}
            }
            let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
            let whence = format!("{file}: panel `{title}`");
            check_datasource(&whence, p.get("datasource"), !targets.is_empty(), &mut problems);
            for t in targets {
                let whence = format!("{whence} target {}", t["refId"].as_str().unwrap_or("?"));
                check_datasource(&whence, t.get("datasource"), true, &mut problems);
                if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                    problems.push(format!("{whence}: no expr"));
                }
            }
        }
    }
    fail_on(&problems);
}

#[test]
fn dashboard_queries_parse_and_use_only_exported_metrics() {
    let exported = exported();
    let mut problems = Vec::new();
    let mut queries = 0;
    for (file, d) in dashboards() {
        for p in all_panels(d["panels"].as_array().map(Vec::as_slice).unwrap_or_default()) {
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let Some(expr) = t["expr"].as_str() else { continue };
                let whence = format!(
                    "{file}: panel `{}` target {}",
                    p["title"].as_str().unwrap_or("?"),
                    t["refId"].as_str().unwrap_or("?")
                );
                check_query(&whence, expr, exported, &mut problems);
                queries += 1;
            }
        }
        // Query variables: `label_values(metric{...}, label)` must name an exported metric.
        for v in d["templating"]["list"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if v["type"] != "query" {
                continue;
            }
            let q = v["query"]["query"].as_str().or(v["query"].as_str()).or(v["definition"].as_str());
            let whence = format!("{file}: variable {}", v["name"]);
            let Some(args) = q.and_then(|q| q.trim().strip_prefix("label_values(")?.strip_suffix(')')) else {
                problems.push(format!("{whence}: expected label_values(metric, label), got {q:?}"));
                continue;
            };
            let (selector, label) = args.rsplit_once(',').expect("label_values(metric, label)");
            check_query(&whence, selector.trim(), exported, &mut problems);
            let metric = selector.split('{').next().unwrap().trim();
            let label = label.trim();
            let has_label = exported.get(metric).is_some_and(|l| l.contains(label));
            if !has_label && !TARGET_LABELS.contains(&label) {
                problems.push(format!("{whence}: `{metric}` has no label `{label}`"));
            }
        }
    }
    assert!(queries > 0, "no panel queries found");
    fail_on(&problems);
}

/// The `expr:` values of a Prometheus rules file, read with string handling (plain,
/// quoted, and `>`/`|` block scalars), since no YAML parser is a dependency.
fn rule_exprs(yaml: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        let Some(value) = trimmed.strip_prefix("expr:") else {
            i += 1;
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let value = value.trim();
        let start = i + 1;
        if value.starts_with('>') || value.starts_with('|') || value.is_empty() {
            let mut parts = Vec::new();
            i += 1;
            while i < lines.len()
                && (lines[i].trim().is_empty() || lines[i].len() - lines[i].trim_start().len() > indent)
            {
                parts.push(lines[i].trim());
                i += 1;
            }
            out.push((start, parts.join(" ").trim().to_owned()));
            continue;
        }
        let value = value.split(" #").next().unwrap().trim();
        let value = if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.replace("''", "'")
        } else if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            v.replace("\\\"", "\"").replace("\\\\", "\\")
        } else {
            value.to_owned()
        };
        out.push((start, value));
        i += 1;
    }
    out
}

#[test]
fn alert_rules_parse_and_use_only_exported_metrics() {
    let path = dashboards_dir().join("alerts.yml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let exprs = rule_exprs(&yaml);
    assert!(!exprs.is_empty(), "no `expr:` found in {}", path.display());
    let alerts =
        yaml.lines().filter(|l| l.trim_start().trim_start_matches("- ").starts_with("alert:")).count();
    assert_eq!(exprs.len(), alerts, "one expr per alert rule");
    let exported = exported();
    let mut problems = Vec::new();
    for (line, expr) in exprs {
        if expr.contains('$') {
            problems.push(format!("alerts.yml:{line}: Grafana variables have no meaning in a rule: {expr}"));
        }
        check_query(&format!("alerts.yml:{line}"), &expr, exported, &mut problems);
    }
    fail_on(&problems);
}

/// The checks themselves catch what they are for, so a passing run means something.
#[test]
fn the_checks_catch_bad_queries() {
    assert_eq!(
        substitute("rate(x{job=~\"$job\", instance=~\"${instance:regex}\"}[$__rate_interval])", "1m", |_| {
            ".*".to_owned()
        }),
        "rate(x{job=~\".*\", instance=~\".*\"}[1m])"
    );
    assert_eq!(substitute("x[${__rate_interval}] + y[[job]]", "5s", str::to_uppercase), "x[5s] + yJOB");
    let exported = exported();
    let bad = [
        ("rate(rocklog_commits_total[$__rate_interval]", "does not parse"),
        ("rate(rocklog_commit_total[$__rate_interval])", "not exported"),
        ("histogram_quantile(0.9, rate(rocklog_commit_duration_seconds[1m]))", "not exported"),
        ("rocklog_poisoned{instnace=~\"$instance\"}", "no label `instnace`"),
        ("sum by (group) (rocklog_queue_depth)", "groups by `group`"),
        ("rocklog_poisoned{job=\"$job\"}", "multi-value variable"),
    ];
    for (expr, want) in bad {
        let mut problems = Vec::new();
        check_query("t", expr, exported, &mut problems);
        assert!(problems.iter().any(|p| p.contains(want)), "{expr}: want `{want}`, got {problems:?}");
    }
    let yaml = "- alert: A\n  expr: up > 0 # c\n- alert: B\n  expr: >-\n    sum(x)\n      > 1\n  for: 1m\n";
    assert_eq!(rule_exprs(yaml), vec![(2, "up > 0".to_owned()), (4, "sum(x) > 1".to_owned())]);
}
