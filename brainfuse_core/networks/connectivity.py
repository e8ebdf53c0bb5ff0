"""Connection rules: which (pre, post) pairs a projection connects. Each returns two int64 arrays."""

import numpy as np

from ..errors import ModelError


class AllToAll:
    kind = "all_to_all"

    def __init__(self, allow_self=True):
        self.allow_self = allow_self

    def connect(self, n_pre, n_post, same_population, rng):
        pre, post = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
        keep = np.ones_like(pre, dtype=bool) if self.allow_self or not same_population else pre != post
        return pre[keep], post[keep]

    def to_dict(self):
        return {"rule": self.kind, "allow_self": self.allow_self}


class FixedProbability:
    """Each pair connected independently with probability ``p``."""

    kind = "fixed_probability"

    def __init__(self, p, allow_self=False):
        if not 0.0 <= p <= 1.0:
            raise ModelError(f"connection probability must lie in [0, 1], got {p!r}")
        self.p, self.allow_self = p, allow_self

    def connect(self, n_pre, n_post, same_population, rng):
        pre_list, post_list = [], []
        block = max(1, 2_000_000 // max(n_post, 1))
        for start in range(0, n_pre, block):
            rows = min(block, n_pre - start)
            mask = rng.random((rows, n_post)) < self.p
            if same_population and not self.allow_self:
                idx = np.arange(rows)
                cols = start + idx
                valid = cols < n_post
                mask[idx[valid], cols[valid]] = False
            pre, post = np.nonzero(mask)
            pre_list.append(pre + start)
            post_list.append(post)
        return np.concatenate(pre_list), np.concatenate(post_list)

    def to_dict(self):
        return {"rule": self.kind, "p": self.p, "allow_self": self.allow_self}


class FixedInDegree:
    """Each post cell receives exactly ``k`` distinct pre cells."""

    kind = "fixed_indegree"

    def __init__(self, k, allow_self=False):
        if int(k) != k or k < 0:
            raise ModelError(f"in-degree must be a non-negative integer, got {k!r}")
        self.k, self.allow_self = int(k), allow_self

    def connect(self, n_pre, n_post, same_population, rng):
        available = n_pre - (0 if self.allow_self or not same_population else 1)
        if self.k > available:
            raise ModelError(f"in-degree {self.k} exceeds the {available} possible pre cells")
        pre_list = []
        for post in range(n_post):
            candidates = np.arange(n_pre)
            if same_population and not self.allow_self:
                candidates = candidates[candidates != post]
            pre_list.append(rng.choice(candidates, self.k, replace=False))
        pre = np.concatenate(pre_list) if pre_list else np.zeros(0, dtype=np.int64)
        return pre, np.repeat(np.arange(n_post), self.k)

    def to_dict(self):
        return {"rule": self.kind, "k": self.k, "allow_self": self.allow_self}


class OneToOne:
    """Pre cell i to post cell i, for populations of equal size (e.g. one drive train per cell)."""

    kind = "one_to_one"

    def connect(self, n_pre, n_post, same_population, rng):
        if n_pre != n_post:
            raise ModelError(f"one-to-one connections need populations of equal size, got {n_pre} and {n_post}")
        return np.arange(n_pre), np.arange(n_post)

    def to_dict(self):
        return {"rule": self.kind}


class Explicit:
    """A given list of (pre, post) index pairs."""

    kind = "explicit"

    def __init__(self, pairs):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.pairs = pairs

    def connect(self, n_pre, n_post, same_population, rng):
        pre, post = self.pairs[:, 0], self.pairs[:, 1]
        if len(pre) and (pre.min() < 0 or pre.max() >= n_pre or post.min() < 0 or post.max() >= n_post):
            raise ModelError(f"explicit connections must index 0..{n_pre - 1} (pre) and 0..{n_post - 1} (post)")
        return pre, post

    def to_dict(self):
        return {"rule": self.kind, "pairs": self.pairs.tolist()}


RULES = {cls.kind: cls for cls in (AllToAll, FixedProbability, FixedInDegree, OneToOne, Explicit)}


def rule_from_dict(data, where):
    data = dict(data)
    kind = data.pop("rule", None)
    if kind not in RULES:
        raise ModelError(f"{where}.rule: unknown connection rule {kind!r}; use one of {', '.join(RULES)}")
    try:
        return RULES[kind](**data)
    except (TypeError, ModelError) as err:
        raise ModelError(f"{where}: {err}") from None
