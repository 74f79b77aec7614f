//! Target graphs: build targets in dependency order, up to `jobs` at a
//! time; the dependents of a target that does not pass are not built
//! (recorded `not built`: never green, never a guessed red).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::model::{Outcome, TargetResult};
use crate::traits::{RunnerError, Target};

/// The default parallelism: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Check a target graph: names are unique and the dependencies inside the
/// graph form no cycle (the error names it). Dependencies on targets that
/// are not in the graph are satisfied outside it (not built now).
pub fn check(targets: &[Target]) -> Result<(), RunnerError> {
    let mut names = BTreeSet::new();
    for t in targets {
        if !names.insert(t.name.as_str()) {
            return Err(RunnerError(format!(
                "target graph names {:?} twice",
                t.name
            )));
        }
    }
    let graph: Vec<(String, Vec<String>)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.deps.clone()))
        .collect();
    match crate::config::find_cycle(&graph) {
        Some(cycle) => Err(RunnerError(format!(
            "target graph deps form a cycle: {}",
            cycle.join(" -> ")
        ))),
        None => Ok(()),
    }
}

fn not_built(target: &str, because: &str) -> TargetResult {
    TargetResult {
        target: target.to_owned(),
        outcome: Outcome::Undetermined,
        exit_code: None,
        log_location: None,
        detail: format!("not built: dependency {because} did not pass"),
        not_built: true,
    }
}

/// Build `targets` with `run`, in dependency order, at most `jobs` at once.
/// Returns one result per target, in the order of `targets`. The first
/// runner error stops the build (running targets are dropped).
pub async fn run<'a, F, Fut>(
    targets: &'a [Target],
    jobs: usize,
    run: F,
) -> Result<Vec<TargetResult>, RunnerError>
where
    F: Fn(&'a Target) -> Fut,
    Fut: Future<Output = Result<TargetResult, RunnerError>>,
{
    check(targets)?;
    let jobs = jobs.max(1);
    let index: BTreeMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut waiting: Vec<usize> = vec![0; targets.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); targets.len()];
    for (i, t) in targets.iter().enumerate() {
        let deps: BTreeSet<usize> = t
            .deps
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .collect();
        waiting[i] = deps.len();
        for d in deps {
            dependents[d].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..targets.len()).filter(|&i| waiting[i] == 0).collect();
    let mut results: Vec<Option<TargetResult>> = vec![None; targets.len()];
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < jobs
            && let Some(i) = ready.pop_front()
        {
            if results[i].is_some() {
                continue;
            }
            let fut = run(&targets[i]);
            running.push(async move { (i, fut.await) });
        }
        let Some((i, res)) = running.next().await else {
            break;
        };
        let res = res?;
        if res.outcome == Outcome::Passed {
            for &d in &dependents[i] {
                waiting[d] = waiting[d].saturating_sub(1);
                if waiting[d] == 0 && results[d].is_none() {
                    ready.push_back(d);
                }
            }
        } else {
            // Every transitive dependent is not built.
            let mut stack: Vec<usize> = dependents[i].clone();
            while let Some(d) = stack.pop() {
                if results[d].is_none() {
                    results[d] = Some(not_built(&targets[d].name, &targets[i].name));
                    stack.extend(dependents[d].iter().copied());
                }
            }
        }
        results[i] = Some(res);
    }
    // Targets never reached (cannot happen in an acyclic graph) are not built.
    Ok(results
        .into_iter()
        .zip(targets)
        .map(|(r, t)| r.unwrap_or_else(|| not_built(&t.name, "(unreachable)")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn t(name: &str, deps: &[&str]) -> Target {
        Target {
            name: name.into(),
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn result(name: &str, outcome: Outcome) -> TargetResult {
        TargetResult {
            target: name.into(),
            outcome,
            exit_code: None,
            log_location: None,
            detail: String::new(),
            not_built: false,
        }
    }

    #[tokio::test]
    async fn dependency_order_parallelism_and_not_built() {
        // a -> b -> d, a -> c, e alone; b fails.
        let targets = vec![
            t("d", &["b"]),
            t("b", &["a"]),
            t("c", &["a"]),
            t("a", &[]),
            t("e", &[]),
        ];
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = run(&targets, 2, |tg| {
            let order = Arc::clone(&order);
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                order
                    .lock()
                    .map_err(|e| RunnerError(e.to_string()))?
                    .push(tg.name.clone());
                Ok(result(
                    &tg.name,
                    if tg.name == "b" {
                        Outcome::Failed
                    } else {
                        Outcome::Passed
                    },
                ))
            }
        })
        .await
        .unwrap();
        let names: Vec<&str> = out.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["d", "b", "c", "a", "e"]);
        assert!(out[0].not_built, "{:?}", out[0]);
        assert_eq!(out[0].outcome, Outcome::Undetermined);
        assert!(out[0].detail.contains("dependency b"), "{}", out[0].detail);
        assert_eq!(out[1].outcome, Outcome::Failed);
        assert_eq!(out[2].outcome, Outcome::Passed);
        let order = order.lock().unwrap().clone();
        assert!(!order.contains(&"d".to_owned()), "{order:?}");
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("a") < pos("b") && pos("a") < pos("c"), "{order:?}");
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cycle_is_named() {
        let targets = vec![t("a", &["c"]), t("b", &["a"]), t("c", &["b"]), t("x", &[])];
        let e = run(&targets, 4, |tg| async move {
            Ok(result(&tg.name, Outcome::Passed))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("cycle: a -> c -> b -> a"), "{e}");
    }

    #[tokio::test]
    async fn a_runner_error_stops_the_build() {
        let targets = vec![t("a", &[]), t("b", &["a"])];
        let e = run(&targets, 1, |_| async { Err(RunnerError("boom".into())) })
            .await
            .unwrap_err();
        assert_eq!(e.0, "boom");
    }
}
