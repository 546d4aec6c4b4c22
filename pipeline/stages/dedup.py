"""The duplicate decision: exact, near and semantic links form one graph with one keeper per group.

Keep policy (the first that differs decides): an already published record, a record humans labelled
keep, the higher `quality`, the longer content, the smaller id; only records that no other rule drops can
be kept. Every other member is checked directly against the keeper (`pipeline.dedup_graph`); it points at
the keeper with `dup_of`, and `dup_reason` names the check that matched (exact_dup, near_dup, semantic_dup).
A group where no member passes the rules keeps none: each member keeps its own rule's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import dedup_graph, relations
from pipeline.exact import exact_clusters
from pipeline.stages.semantic import semantic_config
from pipeline.stages.spec import Stage, Verdict
from pipeline.workspace import Workspace, read_rows
from schemas import columns as C
from schemas.config import CurateConfig
from schemas.record import EXACT_SCHEMA

STATS_KEY = b"curate.stats"
REASONS = {
    dedup_graph.EXACT: C.REASON_EXACT_DUP,
    dedup_graph.NEAR: C.REASON_NEAR_DUP,
    dedup_graph.SEMANTIC: C.REASON_SEMANTIC_DUP,
}
REASON_OF_KIND = np.array([None, *(REASONS[k] for k in sorted(REASONS))], dtype=object)
DEDUP_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string(), nullable=False),
        pa.field(C.EXACT_CLUSTER, pa.string()),
        pa.field(C.NEAR_CLUSTER, pa.string()),
        pa.field(C.SEMANTIC_CLUSTER, pa.string()),
        pa.field(C.DUP_GROUP, pa.string()),
        pa.field(C.DUP_OF, pa.string()),
        pa.field(C.DUP_REASON, pa.string()),
    ]
)


def _index(node_ids: pl.Series, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Node index of each id (-1 where absent)."""
    lookup = pl.DataFrame({C.ID: node_ids, "n": np.arange(len(node_ids), dtype=np.int64)})
    got = pl.DataFrame({C.ID: pl.Series(ids, dtype=pl.String)}).join(
        lookup, on=C.ID, how="left", maintain_order="left"
    )
    return got["n"].fill_null(-1).to_numpy()


class _Links:
    """What the stages linked: exact groups, near clusters, semantic pairs, over one node index."""

    def __init__(self, ws: Workspace, cfg: CurateConfig) -> None:
        # exact groups: every member linked to the group's smallest id ("rep")
        groups = exact_clusters(
            relations.connect(), relations.parquet_scan(ws.stage_files("exact"), EXACT_SCHEMA)
        )
        self.exact = pa.table(
            {
                C.ID: groups[C.ID].cast(pa.string()),
                C.EXACT_CLUSTER: groups[C.EXACT_CLUSTER].cast(pa.string()),
                "rep": pc.coalesce(groups[C.EXACT_DUP_OF], groups[C.ID]).cast(pa.string()),
            }
        )
        near_path = ws.global_path("near")
        self.near = (
            pq.read_table(near_path)
            if cfg.stages.near and near_path.exists()
            else pa.table(
                {
                    C.ID: pa.array([], pa.string()),
                    C.NEAR_CLUSTER: pa.array([], pa.string()),
                    C.NEAR_PUBLISHED: pa.array([], pa.string()),
                }
            )
        )
        sem_path = ws.global_path("semantic")
        self.semantic = (
            pq.read_table(sem_path, columns=[C.ID_A, C.ID_B])
            if cfg.stages.embed and cfg.stages.semantic and sem_path.exists()
            else pa.table({C.ID_A: pa.array([], pa.string()), C.ID_B: pa.array([], pa.string())})
        )
        local = pl.concat(
            [pl.Series(self.exact[c], dtype=pl.String) for c in (C.ID, "rep")]
            + [pl.Series(self.near[c], dtype=pl.String) for c in (C.ID, C.NEAR_CLUSTER)]
            + [pl.Series(self.semantic[c], dtype=pl.String) for c in (C.ID_A, C.ID_B)]
        )
        self.local = local.unique().sort()
        self.published = pl.Series(self.near[C.NEAR_PUBLISHED], dtype=pl.String).drop_nulls().unique().sort()
        self.n_local = len(self.local)
        self.n = self.n_local + len(self.published)

    def node(self, ids: pa.Array | pa.ChunkedArray, published: bool = False) -> np.ndarray:
        """Node index of local (or published) ids."""
        if published:
            idx = _index(self.published, ids)
            return np.where(idx >= 0, idx + self.n_local, -1)
        return _index(self.local, ids)

    def edges(self) -> np.ndarray:
        """All links as (E, 2) node indices."""
        pieces = [
            np.stack([self.node(self.exact[C.ID]), self.node(self.exact["rep"])], axis=1),
            np.stack([self.node(self.near[C.ID]), self.node(self.near[C.NEAR_CLUSTER])], axis=1),
            np.stack([self.node(self.semantic[C.ID_A]), self.node(self.semantic[C.ID_B])], axis=1),
        ]
        pub = self.near.filter(pc.is_valid(self.near[C.NEAR_PUBLISHED]))
        pieces.append(np.stack([self.node(pub[C.ID]), self.node(pub[C.NEAR_PUBLISHED], True)], axis=1))
        return np.concatenate(pieces).astype(np.int64)


def _attributes(ws: Workspace, cfg: CurateConfig, local: pl.Series) -> pl.DataFrame:
    """Per local node (in node order): may it be kept (no other rule drops it), and its keep-policy key."""
    from pipeline.stages import pre_decision_sql, record_row_sql

    con = relations.connect()
    con.register("nodes", pa.table({C.ID: local.to_arrow()}))
    row = record_row_sql(ws, cfg, skip={"dedup"})
    return pl.from_arrow(
        con.sql(
            f"""SELECT n.{C.ID}, coalesce(({pre_decision_sql(cfg)}) <> '{C.DROP}', true) AS eligible,
                       coalesce(r.{C.HUMAN_DECISION} = '{C.KEEP}', false) AS human_keep,
                       r.{C.QUALITY},
                       CASE r.{C.MODALITY}
                            WHEN '{C.IMAGE_MODALITY}' THEN coalesce(r.{C.WIDTH} * r.{C.HEIGHT}, 0)
                            WHEN '{C.RECORD_MODALITY}' THEN length(coalesce(r.{C.DATA}, ''))
                            ELSE length(coalesce(r.{C.TEXT}, '')) END AS length
                FROM nodes n LEFT JOIN {row} r USING ({C.ID})
                ORDER BY n.{C.ID}"""
        ).to_arrow_table()
    )  # type: ignore[return-value]


class _Checker:
    """Direct similarity of a member to its keeper, by the same rules as the stages that link them."""

    def __init__(self, ws: Workspace, cfg: CurateConfig, links: _Links) -> None:
        self.cfg = cfg
        self.links = links
        n = links.n
        self.exact_group = np.full(n, -1, np.int64)  # a node's exact group, named by its rep's node
        self.exact_group[links.node(links.exact[C.ID])] = links.node(links.exact["rep"])
        self.sigs: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        self.phash: tuple[np.ndarray, np.ndarray] | None = None
        if cfg.stages.near and len(links.near):
            for kind, thr in (("near_text", cfg.near.threshold), ("near_record", cfg.near.record_threshold)):
                if found := self._by_node(ws, kind, C.MINHASH):
                    from pipeline.lsh import signature_matrix

                    sigs = [signature_matrix(values) for _, values in found]
                    mat, has = np.zeros((n, sigs[0].shape[1]), np.uint32), np.zeros(n, bool)
                    for (rows, _), sig in zip(found, sigs, strict=True):
                        mat[rows], has[rows] = sig, True
                    self.sigs[kind] = (mat, has, thr)
            if found := self._by_node(ws, "near_image", C.PHASH):
                ph, has = np.zeros(n, np.uint64), np.zeros(n, bool)
                for rows, values in found:
                    ph[rows], has[rows] = np.asarray(values.cast(pa.uint64())), True
                self.phash = (ph, has)
        self.vectors: pa.Table | None = None
        self.means: dict | None = None
        if len(links.semantic):
            from pipeline.stages.semantic import semantic_stats, vectors_with_lang

            self.vectors = vectors_with_lang(ws, ids=links.local.to_arrow())
            # the centring means of the whole run, not of this subset of linked records
            self.means = semantic_stats(ws).get("means")

    def _by_node(self, ws: Workspace, kind: str, column: str) -> list[tuple[np.ndarray, pa.ChunkedArray]]:
        """(node rows, values) of `column` of the grouped records in a signature stage's files, local and
        published; records with no signature left out."""
        from pipeline.stages.near import published_files

        found = []
        for files, ids, published in (
            (ws.stage_files(kind), self.links.local.to_arrow(), False),
            (published_files(self.cfg, kind), self.links.published.to_arrow(), True),
        ):
            if files and len(ids):
                t = read_rows(files, [C.ID, column], ids)
                t = t.filter(pc.is_valid(t[column]))
                if t.num_rows:
                    found.append((self.links.node(t[C.ID], published), t[column]))
        return found

    def __call__(self, members: np.ndarray, keepers: np.ndarray) -> np.ndarray:
        kind = np.zeros(len(members), np.int8)
        group = self.exact_group[members]
        kind[(group >= 0) & (group == self.exact_group[keepers])] = dedup_graph.EXACT
        todo = kind == 0
        for mat, has, thr in self.sigs.values():
            both = todo & has[members] & has[keepers]
            if both.any():
                i = np.flatnonzero(both)
                est = (mat[members[i]] == mat[keepers[i]]).mean(axis=1)
                kind[i[est >= thr - 1e-9]] = dedup_graph.NEAR
                todo = kind == 0
        if self.phash is not None:
            ph, has = self.phash
            both = todo & has[members] & has[keepers]
            if both.any():
                i = np.flatnonzero(both)
                dist = np.bitwise_count(ph[members[i]] ^ ph[keepers[i]])
                kind[i[dist <= self.cfg.near.image_hamming]] = dedup_graph.NEAR
                todo = kind == 0
        if self.vectors is not None:
            local = todo & (members < self.links.n_local) & (keepers < self.links.n_local)
            if local.any():
                from pipeline.semantic import semantic_similar

                i = np.flatnonzero(local)
                names = self.links.local
                pairs = pa.table(
                    {
                        C.ID_A: names.gather(members[i]).to_arrow(),
                        C.ID_B: names.gather(keepers[i]).to_arrow(),
                    }
                )
                ok = semantic_similar(self.vectors, pairs, semantic_config(self.cfg), means=self.means)
                ok = np.asarray(ok, bool)
                kind[i[ok]] = dedup_graph.SEMANTIC
        return kind


def _semantic_clusters(links: _Links) -> np.ndarray:
    """Per local node: the smallest id of its component under the semantic pairs alone (or None)."""
    from pipeline.lsh import components

    out = np.full(links.n_local, None, dtype=object)
    if not len(links.semantic):
        return out
    e = np.stack([links.node(links.semantic[C.ID_A]), links.node(links.semantic[C.ID_B])], axis=1)
    nodes = np.unique(e)
    comp = components(len(nodes), np.searchsorted(nodes, e))
    rep = np.full(comp.max() + 1, links.n_local, np.int64)
    np.minimum.at(rep, comp, nodes)  # nodes are in id order: the smallest node is the smallest id
    out[nodes] = links.local.to_numpy()[rep[comp]]
    return out


def dedup_step(root: Path, cfg: CurateConfig) -> pa.Table:
    """`id`, the per-stage cluster ids, `dup_group`, `dup_of`, `dup_reason` of every record in a group."""
    ws = Workspace(root)
    links = _Links(ws, cfg)
    if links.n == 0:
        return DEDUP_SCHEMA.empty_table()
    attrs = _attributes(ws, cfg, links.local)
    order = (
        attrs.with_row_index("node")
        .sort(
            ["human_keep", C.QUALITY, "length", C.ID], descending=[True, True, True, False], nulls_last=True
        )["node"]
        .to_numpy()
    )
    rank = np.empty(links.n, np.int64)
    rank[links.n_local :] = -1  # published records come first
    rank[order] = np.arange(len(order))
    eligible = np.ones(links.n, bool)
    eligible[: links.n_local] = attrs["eligible"].to_numpy()
    group, dup_of, kind, released = dedup_graph.assign_keepers(
        links.n, links.edges(), rank, eligible, _Checker(ws, cfg, links)
    )
    names = np.concatenate([links.local.to_numpy(), links.published.to_numpy(), [None]]).astype(object)
    loc = slice(0, links.n_local)

    def name(idx: np.ndarray) -> list:
        return names[idx].tolist()  # -1 is the trailing None

    ex = pl.DataFrame(
        {
            C.ID: pl.Series(links.exact[C.ID], dtype=pl.String),
            C.EXACT_CLUSTER: pl.Series(links.exact[C.EXACT_CLUSTER], dtype=pl.String),
        }
    )
    nr = pl.DataFrame(
        {
            C.ID: pl.Series(links.near[C.ID], dtype=pl.String),
            C.NEAR_CLUSTER: pl.Series(links.near[C.NEAR_CLUSTER], dtype=pl.String),
        }
    )
    out = (
        pl.DataFrame(
            {
                C.ID: links.local,
                C.SEMANTIC_CLUSTER: pl.Series(_semantic_clusters(links).tolist(), dtype=pl.String),
                C.DUP_GROUP: pl.Series(name(group[loc]), dtype=pl.String),
                C.DUP_OF: pl.Series(name(dup_of[loc]), dtype=pl.String),
                C.DUP_REASON: pl.Series(REASON_OF_KIND[kind[loc]].tolist(), dtype=pl.String),
            }
        )
        .join(ex, on=C.ID, how="left")
        .join(nr.unique(C.ID, keep="first"), on=C.ID, how="left")
        .sort(C.ID)
    )
    stats = {
        "groups": int(len(np.unique(group[group >= 0]))),
        "dropped": {REASONS[k]: int((kind[loc] == k).sum()) for k in REASONS},
        "released_by_keeper_check": int(released),
        "groups_without_keeper": int((~eligible[np.unique(group[group >= 0])]).sum()),
    }
    table = out.select(DEDUP_SCHEMA.names).to_arrow().cast(DEDUP_SCHEMA)
    return table.replace_schema_metadata({STATS_KEY: json.dumps(stats, sort_keys=True).encode()})


def _pre_decision(cfg: CurateConfig) -> str:
    from pipeline.stages import pre_decision_sql  # the registry lists this stage: import when called

    return pre_decision_sql(cfg)


def dedup_stats(ws: Workspace) -> dict:
    """What the last dedup step found (groups, copies dropped per check, links cut by the keeper check)."""
    path = ws.global_path("dedup")
    if not path.exists():
        return {}
    return json.loads((pq.read_schema(path).metadata or {}).get(STATS_KEY, b"{}"))


STAGE = Stage(
    name="dedup",
    kind="global",
    doc="one keeper per duplicate group (exact, near and semantic links); copies point at it",
    inputs=("exact", "near", "semantic", "rules", "lang", "pii", "quality", "labels", "label_tasks"),
    writes=DEDUP_SCHEMA,
    settings=lambda cfg: {
        "near": cfg.near.model_dump(include={"threshold", "record_threshold", "image_hamming"}),
        "semantic": semantic_config(cfg).model_dump(),
        "stages": cfg.stages.model_dump(include={"near", "embed", "semantic"}),
        # who may keep a group follows every other verdict: their SQL carries all their settings
        "eligible": _pre_decision(cfg),
    },
    global_fn=dedup_step,
    carried=(C.EXACT_CLUSTER, C.NEAR_CLUSTER, C.SEMANTIC_CLUSTER, C.DUP_GROUP),
    verdict=lambda cfg: Verdict(rank=10, when=f"{C.DUP_OF} IS NOT NULL", reason=C.DUP_REASON),
    view="duplicates",
)
