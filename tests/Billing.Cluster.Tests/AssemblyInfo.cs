// The tests start several silo processes each; on a 2-core machine they run one at a time so that
// fail-over timings are not disturbed by another test's silos.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
