"""The float-island search both int8 paths share (TFLite int8, CoreML W8A8).

Given candidate regions in stages (the coordinate tail and output layers
first, the body only when those are not enough) and ``score(regions)`` --
the gate's score of the artifact with those regions kept float (1 = at the
limits, lower is better, ``inf`` when it does not run) -- find a small set
that passes:

1. forward selection per stage: every candidate measured on top of what is
   chosen; one that passes alone ends the search (the cheapest such); else
   the best one is kept while it helps, and the few most promising are
   measured again on top of it;
2. backward elimination: each chosen region is dropped again when the gate
   passes without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

ROUND = 6  # candidates re-measured on top of the chosen set in each round


class Budget:
    """How long a search may measure: at least ``min_trials``, then until ``seconds`` or ``max_trials`` run out.

    Trials cost from a fraction of a second (MTCNN) to tens of seconds
    (a 500 MB basic CNN): a count alone either stops a cheap search halfway
    through a 40-layer body or lets an expensive one run for an hour.
    """

    def __init__(self, trials: Callable[[], int], seconds: float, min_trials: int, max_trials: int):
        import time

        self.trials, self.seconds, self.min_trials, self.max_trials = trials, seconds, min_trials, max_trials
        self.t0, self._clock = time.perf_counter(), time.perf_counter

    def __call__(self) -> bool:
        n = self.trials()
        return n < self.max_trials and (n < self.min_trials or self._clock() - self.t0 < self.seconds)

    def note(self) -> str | None:
        if self():
            return None
        return f"search stopped after {self.trials()} trials ({self._clock() - self.t0:.0f} s budget)"


@dataclass(frozen=True)
class Region:
    """Ops that stay float together."""

    name: str
    why: str
    ops: tuple[int, ...]  # indices in the graph's op list
    nodes: tuple[str, ...]  # names the quantiser's denylist takes (TFLite tensors, MIL op names)
    int8_weights: bool = False  # float activations with int8 weights (TFLite's dynamic-range FULLY_CONNECTED)


def select(
    stages: Sequence[Sequence[Region]],
    score: Callable[[list[Region]], float],
    cost: Callable[[Region], float],
    fits: Callable[[list[Region]], bool],
    more: Callable[[], bool],
) -> tuple[list[Region], float]:
    """(chosen regions, their score). ``more()`` says whether the trial budget allows another measurement."""
    current = score([])
    chosen: list[Region] = []
    if current <= 1.0:
        return chosen, current
    for stage in stages:
        pool = [r for r in stage if fits(chosen + [r])]
        known: dict[Region, float] = {}
        for r in pool:
            if not more():
                break
            known[r] = score(chosen + [r])
        everything = True  # ``known`` holds every candidate of the pool measured on top of ``chosen``
        while current > 1.0 and known:
            passing = [r for r in known if known[r] <= 1.0 and r not in chosen]
            if passing:
                best = min(passing, key=lambda r: (cost(r), known[r]))
                chosen, current = chosen + [best], known[best]
                break
            best = min((r for r in known if r not in chosen), key=lambda r: (known[r], pool.index(r)), default=None)
            if best is None or known[best] >= current:
                if everything or not more():
                    break
                # none of the most promising helps on top of the chosen set: measure all the others too
                others = [r for r in pool if r not in chosen and r not in known and fits(chosen + [r])]
                for r in others:
                    if not more():
                        break
                    known[r] = score(chosen + [r])
                everything = True
                continue
            chosen, current = chosen + [best], known[best]
            if not more():
                break
            rest = sorted((r for r in known if r not in chosen and fits(chosen + [r])), key=lambda r: (known[r], pool.index(r)))[:ROUND]
            known = {r: score(chosen + [r]) for r in rest}
            everything = False
        if current <= 1.0:
            break
    for r in list(reversed(chosen)):  # the smallest set: drop what the gate does not need
        rest = [x for x in chosen if x is not r]
        if current <= 1.0 and score(rest) <= 1.0:
            chosen = rest
            current = score(chosen)
    return chosen, current
