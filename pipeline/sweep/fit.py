"""Fit L(N, D) = E + A/N^alpha + B/D^beta as Hoffmann et al. (2022) do: Huber loss on log L, quasi-Newton (BFGS)
from a grid of initialisations, keep the best; bootstrap over runs for confidence intervals. Also the 1-D laws and the
compute-optimal allocation N*(C), D*(C) for compute C = c N^gamma D (FLOPs per atom grow as c N^gamma)."""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
from atomforge.data_prep.errors import AtomforgeError

MIN_RUNS = 6  # five parameters, and one left to check them
PARAMS = ("E", "A", "alpha", "B", "beta")


class FitError(AtomforgeError, ValueError):
    pass


@dataclass
class Law:
    E: float
    A: float
    alpha: float
    B: float
    beta: float

    def __call__(self, N, D):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # resampled laws can overflow far out
            return self.E + self.A / np.asarray(N, float) ** self.alpha + self.B / np.asarray(D, float) ** self.beta

    def to_dict(self) -> dict:
        return asdict(self)


def _huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), np.where(a <= delta, r, delta * np.sign(r))


def _objective(theta, logN, logD, logL, delta):
    a, alpha, b, beta, e = theta
    z = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    r = logsumexp(z, axis=0) - logL
    h, dh = _huber(r, delta)
    w = softmax(z, axis=0) * dh
    grad = np.array([w[0].sum(), -(w[0] * logN).sum(), w[1].sum(), -(w[1] * logD).sum(), w[2].sum()])
    return h.sum(), grad


def _inits(logN, logD, logL):
    lo = logL.min()
    for alpha, beta in itertools.product((0.3, 0.7, 1.2), repeat=2):
        for e_off, (sa, sb) in itertools.product((-2.0, -0.5), ((-1.0, -1.0), (1.0, 1.0))):
            yield np.array([lo + sa + alpha * logN.mean(), alpha, lo + sb + beta * logD.mean(), beta, lo + e_off])


def _solve(x0, args):
    """Unconstrained BFGS (the paper uses L-BFGS; BFGS is ~10x faster here on 5 parameters); a decaying law is
    required after."""
    res = minimize(_objective, x0, args=args, jac=True, method="BFGS", options={"maxiter": 2000})
    ok = np.all(np.isfinite(res.x)) and res.x[1] > 0 and res.x[3] > 0
    return (res.fun if ok else np.inf), res.x


def fit_law(N, D, L, delta: float = 1e-3, starts=None) -> tuple[Law, float, list]:
    """Best of many BFGS starts. Returns the law, its objective value and the best few starts (for the bootstrap)."""
    N, D, L = (np.asarray(x, float) for x in (N, D, L))
    check_inputs(N, D, L)
    args = (np.log(N), np.log(D), np.log(L), delta)
    starts = list(starts) if starts is not None else list(_inits(*args[:3]))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # far starts overflow; they lose the sort
        results = sorted((_solve(x0, args) for x0 in starts), key=lambda t: t[0])
    fun, (a, alpha, b, beta, e) = results[0]
    if not np.isfinite(fun):
        raise FitError("no initialisation converged to a decaying law (alpha, beta > 0): the losses do not fall with "
                       "N and D")
    with np.errstate(over="ignore"):
        law = Law(float(np.exp(e)), float(np.exp(a)), float(alpha), float(np.exp(b)), float(beta))
    return law, float(fun), [x for _, x in results[:2]]


def check_inputs(N, D, L):
    n = len(L)
    if n < MIN_RUNS:
        raise FitError(f"too few finished runs to fit L(N, D): {n}, need at least {MIN_RUNS} (5 parameters)")
    if len(np.unique(N)) < 2 or len(np.unique(np.round(np.log(D), 6))) < 2:
        raise FitError(f"L(N, D) needs at least 2 distinct model sizes and 2 distinct data sizes, got "
                       f"{len(np.unique(N))} and {len(np.unique(D))}")
    if not (np.all(np.isfinite(L)) and np.all(L > 0) and np.all(N > 0) and np.all(D > 0)):
        raise FitError("losses, N and D must be finite and positive")


def bootstrap(N, D, L, law_starts, n_boot: int = 200, seed: int = 0, delta: float = 1e-3, noise_sigma: float = 0.0,
              draws_out: list | None = None) -> dict:
    """Percentile 95% intervals of each parameter, refitting on runs resampled with replacement.

    noise_sigma > 0 (the run-to-run spread of log L measured from repeated seeds) also perturbs each resampled loss by
    exp(N(0, sigma)), so the intervals carry seed noise as well as the grid's sampling. Each resample starts from the
    full fit's best few solutions: the grid search of starts is the expensive part. draws_out, a list, receives
    the laws.
    """
    N, D, L = (np.asarray(x, float) for x in (N, D, L))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(L), len(L))
        if len(np.unique(N[idx])) < 2 or len(np.unique(D[idx])) < 2:
            continue
        Lb = L[idx] * np.exp(rng.normal(0.0, noise_sigma, len(idx))) if noise_sigma > 0 else L[idx]
        try:
            law, _, _ = fit_law(N[idx], D[idx], Lb, delta, starts=law_starts)
        except FitError:
            continue
        draws.append([getattr(law, p) for p in PARAMS])
        if draws_out is not None:
            draws_out.append(law)
    draws = np.array(draws)
    if len(draws) < 10:
        raise FitError("the bootstrap produced too few usable resamples: add runs with more distinct N and D")
    return {p: [float(np.percentile(draws[:, i], 2.5)), float(np.percentile(draws[:, i], 97.5))]
            for i, p in enumerate(PARAMS)} | {"n": len(draws)}


def fit_1d(x, L, delta: float = 1e-3) -> dict | None:
    """L(x) = E + A/x^a on the envelope (best loss at each x); None with fewer than 3 distinct x."""
    x, L = np.asarray(x, float), np.asarray(L, float)
    xs = np.unique(x)
    if len(xs) < 3:
        return None
    env = np.array([L[x == v].min() for v in xs])
    lx, ll = np.log(xs), np.log(env)

    def obj(t):
        a, al, e = t
        z = np.stack([a - al * lx, np.full_like(lx, e)])
        r = logsumexp(z, axis=0) - ll
        h, dh = _huber(r, delta)
        w = softmax(z, axis=0) * dh
        return h.sum(), np.array([w[0].sum(), -(w[0] * lx).sum(), w[1].sum()])

    best = None
    for al, eo, sa in itertools.product((0.2, 0.5, 1.0, 1.5), (-2.0, -0.5), (-1.0, 1.0)):
        res = minimize(obj, [ll.min() + sa + al * lx.mean(), al, ll.min() + eo], jac=True, method="BFGS")
        if res.x[1] > 0 and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        return None
    a, al, e = best.x
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "exponent": float(al), "x": xs.tolist(),
            "envelope": env.tolist()}


def flops_law(N, flops_per_atom) -> dict:
    """FLOPs per atom = c N^gamma, from the sizes' counted FLOPs."""
    N, f = np.unique(np.c_[np.asarray(N, float), np.asarray(flops_per_atom, float)], axis=0).T
    if len(N) < 2:
        raise FitError("the compute-optimal allocation needs at least 2 model sizes")
    gamma, logc = np.polyfit(np.log(N), np.log(f), 1)
    return {"c": float(np.exp(logc)), "gamma": float(gamma)}


def compute_optimal(law: Law, c: float, gamma: float, C) -> dict:
    """Minimise L(N, C / (c N^gamma)) over N: alpha A N^-alpha = gamma beta B (c N^gamma / C)^beta."""
    C = np.asarray(C, float)
    N = ((law.alpha * law.A * C ** law.beta / (gamma * law.beta * law.B * c ** law.beta))
         ** (1.0 / (law.alpha + gamma * law.beta)))
    D = C / (c * N ** gamma)
    k = law.alpha + gamma * law.beta
    return {"C": C.tolist(), "N_opt": N.tolist(), "D_opt": D.tolist(), "L_opt": law(N, D).tolist(),
            "N_exponent": float(law.beta / k), "D_exponent": float(law.alpha / k)}
