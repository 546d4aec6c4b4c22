"""Decision: one `decision` (keep / drop / label) and one `reason` per record, from every stage's columns.

Precedence of reasons (the first that applies is the record's reason): duplicates first (the kept copy
of a group carries the quality verdict), then quality rules. Later stages add their reasons here.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline import relations
from pipeline.exact import exact_clusters
from pipeline.workspace import DECISIONS, EXACT, INGEST, RULES, Workspace, write_parquet
from schemas import columns as C
from schemas.record import DECISION_SCHEMA, EXACT_SCHEMA


def decide(ws: Workspace) -> pa.Table:
    """Compute and write `<ws>/decisions.parquet` from the ingest, exact and rules outputs."""
    con = relations.connect()
    ingest = relations.parquet_scan(ws.stage_files(INGEST))
    hashes = relations.parquet_scan(ws.stage_files(EXACT), EXACT_SCHEMA)
    con.register("exact_groups", exact_clusters(con, hashes))
    rules_files = ws.stage_files(RULES)
    rules = (
        relations.parquet_scan(rules_files)
        if rules_files
        else (f"(SELECT NULL::VARCHAR AS {C.ID}, NULL::VARCHAR AS {C.RULE_REASON} WHERE false)")
    )
    table = (
        con.sql(
            f"""
        SELECT i.{C.ID}, i.{C.SOURCE}, i.{C.MODALITY},
               CASE WHEN reason IS NULL THEN '{C.KEEP}' ELSE '{C.DROP}' END AS {C.DECISION},
               reason AS {C.REASON}, g.{C.EXACT_CLUSTER}, g.{C.EXACT_DUP_OF}
        FROM (SELECT {C.ID}, {C.SOURCE}, {C.MODALITY} FROM {ingest}) i
        LEFT JOIN exact_groups g USING ({C.ID})
        LEFT JOIN (SELECT {C.ID}, {C.RULE_REASON} FROM {rules}) r USING ({C.ID}),
        LATERAL (SELECT COALESCE(
            CASE WHEN g.{C.EXACT_DUP_OF} IS NOT NULL THEN '{C.REASON_EXACT_DUP}' END,
            r.{C.RULE_REASON}) AS reason)
        ORDER BY i.{C.ID}
        """
        )
        .to_arrow_table()
        .cast(DECISION_SCHEMA)
    )
    write_parquet(table, ws.global_path(DECISIONS))
    return table
