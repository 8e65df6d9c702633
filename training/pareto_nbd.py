"""Pareto/NBD: the original "counting your customers" model, a second BTYD baseline.

Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they and what
will they do next?", Management Science 33(1); the likelihood and conditional
expressions as in Fader & Hardie's note "A Note on Deriving the Pareto/NBD Model and
Related Expressions" (2005) and Fader, Hardie & Lee (2005). While alive a customer buys
at Poisson rate ``lambda ~ Gamma(r, alpha)``; their lifetime is exponential with rate
``mu ~ Gamma(s, beta)``, independent of ``lambda``. Unlike BG/NBD, a customer can drop
out at any moment, not only right after a purchase, so one who never came back is not
assumed alive.

Numerical care. Every expression that needs a hypergeometric function needs the same
integral, ``I(lo, hi) = int_lo^hi (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` (the chance
of dying between ``lo`` and ``hi`` with no purchase after ``lo``). Its antiderivative is
``-G(tau) / (r+s+x)`` with ``G(tau) = (alpha+tau)^-(r+x) (beta+tau)^-s F(tau)`` when
alpha >= beta, ``(alpha+tau)^(1-r-x) (beta+tau)^-(s+1) F(tau)`` otherwise, and
``F = 2F1(1, c; r+s+x+1; |alpha-beta| / (max(alpha, beta)+tau))``, ``c = r+x`` when
alpha >= beta and ``s+1`` otherwise: the usual ``2F1(r+s+x, s+1; r+s+x+1; .)`` (or
``2F1(r+s+x, r+x; r+s+x+1; .)``) form after
Euler's transformation ``2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)``. Its
series has positive terms whose ratios stay below ``z``, so ``1 <= F <= 1/(1-z)``: no
overflow, whatever the customer's frequency, where the untransformed function grows like
``(1-z)^-(s+r+x)`` and overflows. ``G`` is kept in logs and the difference
``G(lo) - G(hi)`` taken as ``G(lo) (1 - exp(log G(hi) - log G(lo)))``; where the two are
close (the last purchase near the end) the integral is small beside the "still alive"
term, so its rounding does not reach the likelihood.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from training.btyd import _distinct_histories, _non_negative_horizon, _purchase_history

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(BaseEstimator):
    """Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

    Same inputs and methods as :class:`training.btyd.BetaGeoModel`: an RFM summary with
    ``frequency`` (repeat purchase days), ``recency`` and ``T`` in one time unit (weeks
    in this project), as :func:`training.btyd.rfm_summary` builds it.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters added to the mean negative log-likelihood (the
        lifetimes convention); 0 gives plain maximum likelihood.

    Attributes
    ----------
    r_, alpha_ : float
        Shape and rate of the Gamma distribution of purchase rates (per time unit).
    s_, beta_ : float
        Shape and rate of the Gamma distribution of dropout rates (per time unit).
    n_customers_ : int
        Customers the model was fitted on.
    log_likelihood_ : float
        Total log-likelihood of those customers at the fitted parameters (no penalty).

    Examples
    --------
    >>> model = ParetoNBDModel().fit(summary)                    # doctest: +SKIP
    >>> model.expected_purchases(summary, t=39)                  # doctest: +SKIP
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame, y=None) -> ParetoNBDModel:
        """Learn ``r_, alpha_, s_, beta_`` by maximum likelihood from ``frequency, recency, T``.

        The likelihood is maximised over log-parameters with L-BFGS-B on central
        finite-difference gradients (the hypergeometric term has no closed-form
        derivative in its parameters), from all ones, the lifetimes start.
        """
        x, t_x, T = _purchase_history(summary)
        (ux, ut_x, uT), counts = _distinct_histories(x, t_x, T, "ParetoNBDModel")
        weights = counts / counts.sum()

        def objective(log_params):
            params = np.exp(log_params)
            ll = pareto_nbd_log_likelihood(params, ux, ut_x, uT)
            value = -weights @ ll + self.penalizer * np.sum(params**2)
            return value if np.isfinite(value) else 1e300

        result = minimize(objective, np.zeros(4), jac="3-point", method="L-BFGS-B",
                          options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-7})
        if not result.success:
            warnings.warn(f"ParetoNBDModel fit did not converge: {result.message}", ConvergenceWarning, stacklevel=2)
        params = np.exp(result.x)
        self.r_, self.alpha_, self.s_, self.beta_ = (float(v) for v in params)
        self.n_customers_ = int(len(x))
        self.log_likelihood_ = float(counts @ pareto_nbd_log_likelihood(params, ux, ut_x, uT))
        return self

    def _params(self):
        check_is_fitted(self)
        return self.r_, self.alpha_, self.s_, self.beta_

    def probability_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """P(the customer is still alive at ``T`` | history).

        ``1 / (1 + s I(t_x, T) (alpha+T)^(r+x) (beta+T)^s)``: the "alive at T" branch of
        the likelihood over the whole of it.
        """
        r, alpha, s, beta = self._params()
        x, t_x, T = _purchase_history(summary)
        return _alive(r, alpha, s, beta, x, t_x, T)

    def expected_purchases(self, summary: pd.DataFrame, t: float) -> np.ndarray:
        """E[number of purchases in ``(T, T+t]`` | history].

        ``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]``
        (Fader & Hardie's note, equation 24), with the limit ``log((beta+T+t)/(beta+T))``
        of the bracket over ``s-1`` as ``s`` nears 1.
        """
        r, alpha, s, beta = self._params()
        t = _non_negative_horizon(t)
        x, t_x, T = _purchase_history(summary)
        lifetime = _expected_alive_time(s, beta + T, t)   # E[time alive within the window | alive at T]
        return _alive(r, alpha, s, beta, x, t_x, T) * (r + x) / (alpha + T) * lifetime

    def purchase_probability(self, summary: pd.DataFrame, t: float) -> np.ndarray:
        """P(at least one purchase in ``(T, T+t]`` | history).

        Alive at ``T``, the posterior is ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~
        Gamma(s, beta+T)``, independent. No purchase in the window means dying at some
        ``tau < t`` before a purchase, or surviving it without one: ``E[exp(-(lambda+mu)
        t)] + E[int_0^t mu exp(-(lambda+mu) tau) dtau]`` = ``((alpha+T)/(alpha+T+t))^(r+x)
        ((beta+T)/(beta+T+t))^s + s (alpha+T)^(r+x) (beta+T)^s I(T, T+t)``. Hence
        ``P(alive) * (1 - that)``.
        """
        r, alpha, s, beta = self._params()
        t = _non_negative_horizon(t)
        x, t_x, T = _purchase_history(summary)
        if t == 0:
            return np.zeros(len(x))
        log_scale = (r + x) * np.log(alpha + T) + s * np.log(beta + T)
        survive = -(r + x) * np.log1p(t / (alpha + T)) - s * np.log1p(t / (beta + T))
        die = np.log(s) + log_scale + _log_integral(r, alpha, s, beta, x, T, T + t)
        none_if_alive = np.exp(np.logaddexp(survive, die))
        return _alive(r, alpha, s, beta, x, t_x, T) * np.clip(1.0 - none_if_alive, 0.0, 1.0)


def pareto_nbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood at ``params = (r, alpha, s, beta)``.

    ``log Gamma(r+x) - log Gamma(r) + r log alpha + s log beta + log[(alpha+T)^-(r+x)
    (beta+T)^-s + s I(t_x, T)]`` (Fader & Hardie's note, equation 19, with their
    ``A_0`` term written as the integral ``I``).
    """
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) + _log_integral(r, alpha, s, beta, x, t_x, T)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, dead)


def _alive(r, alpha, s, beta, x, t_x, T) -> np.ndarray:
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead = np.log(s) + _log_integral(r, alpha, s, beta, x, t_x, T)
    return np.exp(alive - np.logaddexp(alive, dead))


def _log_G(r, alpha, s, beta, x, tau) -> np.ndarray:
    """``log G(tau)``, the antiderivative of the integrand times ``-(r+s+x)`` (module docstring)."""
    a = r + s + x
    if alpha >= beta:
        c, z = r + x, (alpha - beta) / (alpha + tau)
        powers = -(r + x) * np.log(alpha + tau) - s * np.log(beta + tau)
    else:
        c, z = np.full_like(x, s + 1.0), (beta - alpha) / (beta + tau)
        powers = (1.0 - r - x) * np.log(alpha + tau) - (s + 1.0) * np.log(beta + tau)
    return powers + np.log(hyp2f1(1.0, c, a + 1.0, z))


def _log_integral(r, alpha, s, beta, x, lo, hi) -> np.ndarray:
    """``log I(lo, hi)``; ``-inf`` where ``lo == hi``."""
    upper, lower = _log_G(r, alpha, s, beta, x, lo), _log_G(r, alpha, s, beta, x, hi)
    with np.errstate(divide="ignore"):
        gap = np.log(-np.expm1(np.minimum(lower - upper, 0.0)))
    return upper + gap - np.log(r + s + x)


def _expected_alive_time(s: float, beta_T: np.ndarray, t: float) -> np.ndarray:
    """``E[min(lifetime, t)]`` for a customer alive now whose dropout rate is ``Gamma(s, beta_T)``:
    ``beta_T / (s-1) [1 - (beta_T/(beta_T+t))^(s-1)]``, its log limit at ``s = 1``."""
    log_ratio = np.log1p(t / beta_T)
    if abs(s - 1.0) < 1e-8:
        return beta_T * log_ratio
    return beta_T * -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
