//! Every committed seed of every fuzz target through its harness: `make fuzz` starts from these
//! seeds, so a harness that fails on them (or a seed that no longer passes after a change of the
//! code) fails here, in `make test`, instead of in the next fuzzing session.

use std::path::Path;

#[test]
fn every_committed_seed_passes_its_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut total = 0;
    for (target, harness) in candles_fuzz_harness::TARGETS {
        let dir = root.join(target);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(
                outcome.is_ok(),
                "{target} fails on its seed {}",
                seed.display()
            );
            total += 1;
        }
    }
    assert!(total > 0);
}

#[test]
fn every_target_has_a_harness_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut targets: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
        .collect();
    targets.sort();
    let mut known: Vec<String> = candles_fuzz_harness::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    known.sort();
    assert_eq!(targets, known);
    for t in &targets {
        assert!(root.join("corpus").join(t).is_dir(), "no corpus for {t}");
    }
}
