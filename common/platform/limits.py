"""What Google Cloud allows, as its documentation says (each with its source). infra/settings.json must stay within
these: tests/unit/test_platform_limits.py checks every timeout, retry count and deadline it sets, and the trainer
and the local runner take their defaults from here."""
from __future__ import annotations

# Cloud Run Jobs: one attempt of a task runs at most 168 hours (7 days); a task with a GPU at most 1 hour, or
# 12 hours where the job opts into the "long running GPU jobs" preview. GPU tasks are not live-migrated:
# maintenance stops them, so a multi-hour task should expect an interruption.
# https://cloud.google.com/run/docs/configuring/task-timeout
TASK_TIMEOUT_MAX_SECONDS = 168 * 3600
GPU_TASK_TIMEOUT_MAX_SECONDS = 3600
# Retries of one task: 0 to 10 (the default 3), each attempt with the whole task timeout.
# https://cloud.google.com/run/docs/configuring/max-retries
TASK_MAX_RETRIES = 10
# A stopped container gets SIGTERM, then SIGKILL 10 seconds later.
# https://cloud.google.com/run/docs/container-contract#lifecycle
SIGTERM_GRACE_SECONDS = 10

# Vertex AI custom jobs: scheduling.timeout, the most a job runs (7 days when unset).
# https://cloud.google.com/vertex-ai/docs/reference/rest/v1/CustomJobSpec#Scheduling
VERTEX_JOB_TIMEOUT_MAX_SECONDS = 7 * 24 * 3600

# Cloud Run functions (2nd gen): an event-driven function at most 540 s, an HTTP function at most 3600 s.
# https://cloud.google.com/functions/docs/configuring/timeout
EVENT_FUNCTION_TIMEOUT_MAX_SECONDS = 540
HTTP_FUNCTION_TIMEOUT_MAX_SECONDS = 3600

# Pub/Sub subscriptions: an ack deadline of 10 to 600 s (a push subscription waits that long for its endpoint);
# retry backoff 0 to 600 s; dead lettering after 5 to 100 delivery attempts; messages kept 10 minutes to 31 days.
# https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions
ACK_DEADLINE_MIN_SECONDS, ACK_DEADLINE_MAX_SECONDS = 10, 600
BACKOFF_MAX_SECONDS = 600
DELIVERY_ATTEMPTS_MIN, DELIVERY_ATTEMPTS_MAX = 5, 100
RETENTION_MIN_SECONDS, RETENTION_MAX_SECONDS = 600, 31 * 24 * 3600
