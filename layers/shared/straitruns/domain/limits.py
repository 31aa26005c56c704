"""Every limit of the service (spec 1.5), in one place."""

KIB = 1024
MIB = 1024 * KIB

REQUEST_BODY_BYTES = 1 * MIB
PAYLOAD_BYTES = 256 * KIB
RESULT_BYTES = 256 * KIB
ERROR_BYTES = 8 * KIB
JSON_MAX_DEPTH = 64

MAP_ENTRIES = 32  # metadata and tags
MAP_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
MAP_VALUE_CHARS = 512
SLUG_PATTERN = r"^[a-z0-9-]{1,64}$"
KEY_CHARS = 256  # idempotency key, concurrency key

EVENT_MESSAGE_BYTES = 8 * KIB
EVENT_DATA_BYTES = 64 * KIB
STATE_VALUE_BYTES = 256 * KIB
ENTRY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,256}$"  # state and output keys
STREAM_ID_CHARS = 64
STREAM_CHUNK_BYTES = 64 * KIB
CHILDREN_PER_RUN = 1000

BULK_IDS = 100  # bulk-cancel, bulk-replay
BULK_DLQ_IDS = 500
BULK_CANCEL_ALL_RUNS = 1000  # runs one bulk-cancel-all call cancels at most
BULK_TRIGGER_ITEMS = 500
LINEAGE_DEPTH = 10
# Bound the work of a trigger (one read per dependency) and of the dependency cycle check.
DEPENDENCIES_PER_JOB = 50
DEPENDENCY_GRAPH_JOBS = 1000
WORK_SECONDS_PER_REQUEST = 20
RESPONSE_BYTES = 5 * MIB

# Integers in query values, headers and cursors (limit, Last-Event-ID, from_checkpoint, sequences):
# at most this many significant digits, checked before conversion (docs/api-behaviour.md).
TEXT_INT_DIGITS = 18
# JSON numbers in bodies and stored values: at most this many digits (docs/api-behaviour.md).
JSON_NUMBER_DIGITS = 1000

RUN_LIST_DEFAULT_LIMIT = 50
RUN_LIST_MAX_LIMIT = 100
SUB_LIST_DEFAULT_LIMIT = 1000
SUB_LIST_MAX_LIMIT = 1000

PRIORITY_MIN, PRIORITY_MAX = 0, 10
SCHEDULE_AHEAD_MAX_SECS = 30 * 24 * 3600
MAX_ATTEMPTS_RANGE = (1, 100)
TIMEOUT_SECS_RANGE = (1, 840)
RUN_TTL_SECS_RANGE = (60, 2_592_000)
RETRY_DELAY_SECS_RANGE = (0, 86_400 * 7)

# Payload leaves indexed for payload_contains, on the paths a job names (at most 8): the first 24.
PAYLOAD_INDEXED_LEAVES = 24
INDEXED_PAYLOAD_PATHS = 8
PAYLOAD_PATH_CHARS = 256
# Dot-separated member names, each possibly followed by `[]` (array elements): `order.id`, `items[]`.
PAYLOAD_PATH_PATTERN = r"^[^.\[\]]+(\[\])*(\.[^.\[\]]+(\[\])*)*$"
# The stored run item keeps JSON values inline up to this size; larger ones get their own item.
INLINE_JSON_BYTES = 32 * KIB
IDEMPOTENCY_HOLD_SECS = 24 * 3600

# In-run plane (docs/in-run-plane.md). Limits the specification leaves open: a DynamoDB item holds at
# most 400 KB, so a tool call's input and output and an output's schema are bounded as well.
TOOL_CALL_JSON_BYTES = 128 * KIB  # tool call `input` and `output`, each
OUTPUT_SCHEMA_BYTES = 64 * KIB
LABEL_CHARS = 256  # provider, model, tool_name, event type, checkpoint source, tool status, step
COUNTER_MAX = 10**15  # token counts, cost_microusd, duration_ms, eta_seconds
AWAIT_TIMEOUT_SECS_DEFAULT = 3600
AWAIT_TIMEOUT_SECS_RANGE = (1, 2_592_000)
STREAM_CHUNK_TTL_SECS = 24 * 3600
# Readers wait this long for a sequence number that is allocated but still being written (spec 2.3).
SEQUENCE_GAP_WAIT_SECS = 2.0
DEBUG_BUNDLE_LIST_ITEMS = 10_000
LAST_CHECKPOINT_HEADER_BYTES = 4 * KIB
