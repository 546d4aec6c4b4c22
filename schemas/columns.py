"""Column names of every stage: the one place a column name is spelled.

Stages import these constants; SQL views and tests use the same names. A stage adds
its own columns and never rewrites another stage's.
"""

# --- record (ingest) ---------------------------------------------------------------
ID = "id"
SOURCE = "source"
MODALITY = "modality"  # one of MODALITIES
TEXT = "text"
IMAGE = "image"  # raw encoded image bytes
IMAGE_PATH = "image_path"
WIDTH = "width"
HEIGHT = "height"
IMAGE_FORMAT = "image_format"
DATA = "data"  # structured fields as canonical JSON
META = "meta"  # other source fields as JSON
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"  # 1-based line (JSONL/CSV) or row (Parquet) or member index (tar)

TEXT_MODALITY = "text"
IMAGE_MODALITY = "image"
RECORD_MODALITY = "record"
MODALITIES = (TEXT_MODALITY, IMAGE_MODALITY, RECORD_MODALITY)

# --- quarantine --------------------------------------------------------------------
Q_FILE = "file"
Q_LINE = "line"
Q_EXCERPT = "excerpt"
Q_REASON = "reason"

# --- exact dedup -------------------------------------------------------------------
CONTENT_HASH = "content_hash"  # xxh3-128 hex of normalised content; null for empty content
EXACT_CLUSTER = "exact_cluster"  # content_hash of the group, null when the record is unique
EXACT_DUP_OF = "exact_dup_of"  # id of the kept record of the group, null for kept/unique

# --- near dedup --------------------------------------------------------------------
NEAR_CLUSTER = "near_cluster"
DUP_OF = "dup_of"  # id of the kept record of the near-duplicate cluster, null when kept
MINHASH = "minhash"  # fixed-size list<uint32> signature
PHASH = "phash"  # uint64 perceptual hash
LSH_BAND = "lsh_band_"  # prefix: lsh_band_00, lsh_band_01, ... one uint64 LSH key per band
NEAR_LENGTH = "near_length"  # normalised characters (text/record) or pixels (image): the keep tie-break
NEAR_PUBLISHED = "near_published"  # id of an already published record in the same near cluster

# --- the duplicate graph (exact, near and semantic links; one keeper per group) ---------
DUP_GROUP = "dup_group"  # id of the group's kept record (or of its best member when none passes the rules)
DUP_REASON = "dup_reason"  # the check that linked a dropped copy to its keeper: exact/near/semantic_dup
ID_A = "id_a"  # a pair of records (id_a < id_b)
ID_B = "id_b"
SIMILARITY = "similarity"

# --- embeddings, semantic dedup ----------------------------------------------------
EMBEDDING = "embedding"
EMBED_MODEL = "model"
SEMANTIC_CLUSTER = "semantic_cluster"  # smallest id of a group linked by semantic pairs alone
CAPTION_ALIGNMENT = "caption_alignment"

# --- quality -----------------------------------------------------------------------
RULE_PREFIX = "rule_"  # every heuristic rule writes rule_<name>
RULE_REASON = "rule_reason"  # first rule that failed, null when all passed
QUALITY = "quality"
UNCERTAINTY = "uncertainty"
REFERENCE_SCORE = "reference_score"
LANG = "lang"
LANG_SCORE = "lang_score"
PII_COUNT = "pii_count"
PII_KINDS = "pii_kinds"

# --- routing, decision -------------------------------------------------------------
DECISION = "decision"  # one of DECISIONS
REASON = "reason"
QUEUE = "queue"
KEEP = "keep"
DROP = "drop"
LABEL = "label"
DECISIONS = (KEEP, DROP, LABEL)

# reasons written by the stages (rules write their own rule names)
REASON_EXACT_DUP = "exact_dup"
REASON_NEAR_DUP = "near_dup"
REASON_SEMANTIC_DUP = "semantic_dup"

# --- labels ------------------------------------------------------------------------
LABEL_VALUE = "label"
LABEL_CONFIDENCE = "label_confidence"
ANNOTATORS = "annotators"
PREDICTION = "prediction"  # model's suggested label sent as a pre-annotation
PREDICTION_SCORE = "prediction_score"
PROJECT_ID = "project_id"  # Label Studio project of a queue
TASK_ID = "task_id"  # Label Studio task
ANNOTATION_ID = "annotation_id"  # Label Studio annotation
ANNOTATOR = "annotator"  # Label Studio user id (as text) who made an annotation
SERVER = "server"  # base URL of the Label Studio server a row came from
IS_GOLD = "is_gold"  # task mixed in with a known answer
GOLD_LABEL = "gold_label"
CATEGORY = "category"  # secondary choice of a text queue (domain / topic)
CORRECTION = "correction"  # annotator's fixed caption / record note
N_ANNOTATIONS = "n_annotations"
GOLD_ACCURACY = "gold_accuracy"
AGREEMENT = "agreement"  # annotator's share of annotations that match the consensus
KRIPPENDORFF_ALPHA = "krippendorff_alpha"
FLEISS_KAPPA = "fleiss_kappa"
LABEL_ISSUE = "label_issue"  # confident learning: the given label looks wrong
LABEL_QUALITY = "label_quality"
SUGGESTED_LABEL = "suggested_label"
HUMAN_LABEL = "human_label"  # the label that decides a record (a review queue's wins)
HUMAN_DECISION = "human_decision"  # keep / drop as that label says
PUSHED = "pushed"  # sent to Label Studio, not gold
LABEL_RANK = "label_rank"  # 1.. order in which routing picked a record for humans, null = not picked

# --- labels that came with the data (label check / review) and decontamination -----------
LABEL_FIELD = "label_field"  # the source field a data label was read from
VOTED_LABEL = "voted_label"  # majority of the labels of a duplicate group's copies
LABEL_SOURCE = "label_source"  # where a record's `label` came from: data, vote or review
P_WRONG = "p_wrong"  # out-of-fold probability that the given label is wrong
CONTAMINATED_BY = "contaminated_by"  # `<eval file>#<item id>` of the evaluation item a record overlaps
CONTAMINATION = "contamination"  # which check matched: ngram, near or semantic
CONTAMINATION_SCORE = "contamination_score"  # longest shared span (words) or similarity of that check
REASON_CONTAMINATED = "contaminated"
