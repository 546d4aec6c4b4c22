"""One duplicate graph, one keeper per group.

Exact, near and semantic links between records form one graph. Each connected component gets exactly one
keeper, chosen once by the keep policy among the members that may be kept (those no other rule drops);
every other member must then pass a direct check against that keeper (same content, near-duplicate of it,
or semantically the same) to be dropped as its copy. A member that fails is released: released members
form their own components, which are resolved the same way. So no copy points at a copy, no pointer chain
can cycle, and a chain of loose links (A~B, B~C, C~D ...) cannot drop a record unlike its keeper.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.lsh import components

EXACT, NEAR, SEMANTIC = 1, 2, 3  # link kinds, strongest first; 0 = no link
Check = Callable[[np.ndarray, np.ndarray], np.ndarray]


def assign_keepers(
    n: int, edges: np.ndarray, rank: np.ndarray, eligible: np.ndarray, check: Check
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Keepers of the graph of `n` nodes with undirected `edges` (E, 2).

    `rank` orders nodes by the keep policy (lower is better); `eligible` says which may be kept;
    `check(members, keepers)` gives, per pair, the strongest link kind that holds directly between them
    (0 for none). Returns per node: `group` (its keeper; the best member of a group with no eligible
    member; -1 when not in a group), `dup_of` (its keeper, -1 for keepers and the rest), `kind` (the
    link kind that made it a copy), and how many members were released by the keeper check.
    """
    group = np.full(n, -1, np.int64)
    dup_of = np.full(n, -1, np.int64)
    kind = np.zeros(n, np.int8)
    released_total = 0
    e = np.asarray(edges, np.int64).reshape(-1, 2)
    e = e[e[:, 0] != e[:, 1]]
    while len(e):
        nodes = np.unique(e)
        comp = components(len(nodes), np.searchsorted(nodes, e))
        key = np.where(eligible[nodes], rank[nodes], rank[nodes] + n)  # eligible members first
        order = np.lexsort((key, comp))
        starts = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1]])
        best = np.empty(comp.max() + 1, np.int64)
        best[comp[order][starts]] = nodes[order][starts]
        best_of = best[comp]
        kept_group = eligible[best_of]
        group[nodes] = best_of  # no-keeper groups: named after their best member, nobody dropped
        is_keeper = nodes == best_of
        ask = kept_group & ~is_keeper
        members, keepers = nodes[ask], best_of[ask]
        k = np.asarray(check(members, keepers), np.int8) if len(members) else np.zeros(0, np.int8)
        ok = k > 0
        dup_of[members[ok]], kind[members[ok]] = keepers[ok], k[ok]
        released = members[~ok]
        group[released] = -1
        released_total += len(released)
        free = np.zeros(n, bool)
        free[released] = True
        e = e[free[e[:, 0]] & free[e[:, 1]]]
    return group, dup_of, kind, released_total
