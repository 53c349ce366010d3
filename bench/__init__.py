"""`make bench` (`python -m bench.run`): how fast Rampart starts, handles events and remediates.

Four measurements, each printed with its target and written to bench/results.json together
with the machine it ran on:

1. cold start (`bench.coldstart`): whole processes, median of several runs after a warm-up;
2. per-event cost in process (`bench.per_event`): Rampart over a corpus mix vs. the floor of
   base64 + JSON-decoding the same messages;
3. time to remediate end to end (`bench.e2e`): the local pipeline (Pub/Sub emulator push →
   functions-framework → real clients → stand-in), with a no-op function as the baseline of what
   the emulator itself costs, and a sustained-rate run;
4. memory: peak RSS of the function server over run 3.

A benchmark, not a test: nothing here fails on a missed target; tests/test_bench_smoke.py only
checks that each measurement still runs on tiny inputs and returns well-formed numbers.
"""
