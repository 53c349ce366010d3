"""The posture sweep: every rule, run on the live state of every resource in scope.

Data flows one way, as for events: Cloud Asset Inventory pages (`lister`) → records, parsed once
(`records`) → the rules (`evaluate`, pure) → the decision, capped by `sweep.max_mode` → the
rule's action against live state (`shared.pipeline.act`) → record + alert, deduplicated with the
event path (`shard`). A sweep runs in one process (`python main.py scan`, `local`) or scaled out
(`worker`: a planner publishes one shard per page to Pub/Sub, workers evaluate them), with its
progress in Firestore (`progress`) and its report as text, JSON or HTML (`report`).
"""
