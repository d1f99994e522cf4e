use super::*;

#[test]
fn the_final_stats_are_read_from_libfuzzers_log() {
    let log = "INFO: seed corpus: files: 3\n\
        #2\tINITED cov: 6 ft: 7 corp: 1/1b exec/s: 0 rss: 27Mb\n\
        #8388608\tpulse  cov: 6 ft: 7 corp: 1/1b lim: 4096 exec/s: 4194304 rss: 27Mb\n\
        #16562517\tDONE   cov: 1234 ft: 5678 corp: 91/2048b lim: 4096 exec/s: 2760419 rss: 27Mb\n\
        Done 16562517 runs in 6 second(s)\n";
    assert_eq!(
        parse_stats(log),
        Stats {
            executions: 16_562_517,
            coverage: 1_234,
            features: 5_678,
            corpus: 91,
        }
    );
}

#[test]
fn a_log_without_stats_reads_as_zero() {
    assert_eq!(parse_stats("nothing here\n"), Stats::default());
}
