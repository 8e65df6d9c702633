"""BTYD baseline: the BG/NBD purchase model and the Gamma-Gamma spend model.

The classical "buy 'til you die" pair our LightGBM models must beat, and whose outputs
(expected purchases, probability alive, expected spend) can serve as features.

- BG/NBD: Fader, Hardie & Lee (2005), "'Counting your customers' the easy way: an
  alternative to the Pareto/NBD model", Marketing Science 24(2). While alive a customer
  buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; right after each repeat purchase
  they drop out for good with probability ``p ~ Beta(a, b)``.
- Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for
  customer base analysis", JMR 42(4), and Fader & Hardie's note "The Gamma-Gamma model
  of monetary value" (2013). A customer's transaction values are ``Gamma(p, nu)`` with
  ``nu ~ Gamma(q, v)``, independent of the purchase process.

Both are fitted by maximum likelihood on the closed-form log-likelihood, optimised over
log-parameters (so they stay positive) with analytic gradients; numpy and scipy only.
Inputs are the RFM summary of :func:`rfm_summary`, in the lifetimes / PyMC-Marketing
conventions, so fitted parameters are comparable with theirs.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

__all__ = ["rfm_summary", "BetaGeoModel", "GammaGammaModel"]

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")


def rfm_summary(purchases: pd.DataFrame, as_of: dt.date, time_unit_days: float = 7.0) -> pd.DataFrame:
    """The BTYD summary per customer, from one row per order, as of the end of ``as_of``.

    Orders dated after ``as_of`` and orders without a ``customer_id`` are ignored; the rest
    are summed per customer-day first, because in BTYD models a purchase is a distinct day
    (two orders on one day are one purchase). Times are in units of ``time_unit_days`` days
    (weeks by default). These are the conventions of lifetimes' and PyMC-Marketing's ``rfm_summary`` with
    ``observation_period_end=as_of``, ``time_unit="D"``, ``time_scaler=time_unit_days``.

    Parameters
    ----------
    purchases : DataFrame
        Columns ``customer_id``, ``day`` (``datetime.date`` or datetime64; a time of day is
        dropped) and ``amount``.
    as_of : datetime.date
        The last day observed. Always explicit: never "the latest order".
    time_unit_days : float
        Length of one time unit in days.

    Returns
    -------
    DataFrame indexed by ``customer_id`` (sorted), one row per customer with an order by
    ``as_of``:

    - ``frequency``: number of repeat purchase days (distinct purchase days - 1);
    - ``recency``: time from the first to the last purchase day;
    - ``T``: time from the first purchase day to ``as_of``;
    - ``monetary_value``: mean revenue of the repeat purchase days (the first day is left
      out, as in the Gamma-Gamma model), 0 when ``frequency`` is 0.
    """
    _require_columns(purchases, ("customer_id", "day", "amount"), "purchases")
    if not time_unit_days > 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days!r}")
    days = pd.to_datetime(purchases["day"]).dt.normalize()
    if days.isna().any():
        raise ValueError("Column 'day' of purchases has missing dates")
    amounts = pd.to_numeric(purchases["amount"], errors="coerce")
    if amounts.isna().any():
        raise ValueError("Column 'amount' of purchases has missing or non-numeric values")
    end = pd.Timestamp(as_of)
    kept = days <= end
    daily = (pd.DataFrame({"customer_id": purchases["customer_id"][kept].to_numpy(),
                           "day": days[kept].to_numpy(), "amount": amounts[kept].to_numpy()})
             .groupby(["customer_id", "day"], sort=True)["amount"].sum().reset_index())
    first = daily.groupby("customer_id")["day"].transform("min")
    repeat = daily["day"] > first
    grouped = daily.groupby("customer_id")
    unit = pd.Timedelta(days=1) * time_unit_days
    summary = pd.DataFrame({
        "frequency": grouped["day"].size() - 1,
        "recency": (grouped["day"].max() - grouped["day"].min()) / unit,
        "T": (end - grouped["day"].min()) / unit,
        "monetary_value": daily["amount"].where(repeat).groupby(daily["customer_id"]).mean().fillna(0.0),
    })
    summary.index.name = "customer_id"
    return summary.astype({"frequency": "int64", "recency": "float64", "T": "float64",
                           "monetary_value": "float64"})


class BetaGeoModel(BaseEstimator):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters added to the mean negative log-likelihood (the
        lifetimes convention); 0 gives plain maximum likelihood.

    Attributes
    ----------
    r_, alpha_ : float
        Shape and rate of the Gamma distribution of purchase rates (per time unit).
    a_, b_ : float
        Parameters of the Beta distribution of the dropout probability.
    n_customers_ : int
        Customers the model was fitted on.
    log_likelihood_ : float
        Total log-likelihood of those customers at the fitted parameters (no penalty).

    Examples
    --------
    >>> model = BetaGeoModel().fit(summary)                      # doctest: +SKIP
    >>> model.expected_purchases(summary, t=13)                  # doctest: +SKIP
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame, y=None) -> BetaGeoModel:
        """Learn ``r_, alpha_, a_, b_`` by maximum likelihood from ``frequency, recency, T``."""
        x, t_x, T = _purchase_history(summary)
        (ux, ut_x, uT), counts = _distinct_histories(x, t_x, T, "BetaGeoModel")
        weights = counts / counts.sum()

        def objective(log_params):
            params = np.exp(log_params)
            ll, grad = _bgnbd_log_likelihood(params, ux, ut_x, uT, with_gradient=True)
            value = -weights @ ll + self.penalizer * np.sum(params**2)
            gradient = -(weights @ grad) * params + 2 * self.penalizer * params**2
            return value, gradient

        params = _maximise(objective, "BetaGeoModel")
        self.r_, self.alpha_, self.a_, self.b_ = (float(v) for v in params)
        self.n_customers_ = int(len(x))
        self.log_likelihood_ = float(counts @ _bgnbd_log_likelihood(params, ux, ut_x, uT)[0])
        return self

    def probability_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """P(the customer is still alive at ``T`` | history).

        ``1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``: a customer without
        a repeat purchase cannot have dropped out yet, so they are alive with probability 1.
        """
        check_is_fitted(self)
        x, t_x, T = _purchase_history(summary)
        return 1.0 / (1.0 + self._dead_to_alive_odds(x, t_x, T))

    def expected_purchases(self, summary: pd.DataFrame, t: float) -> np.ndarray:
        """E[number of purchases in ``(T, T+t]`` | history] (paper, equation 10).

        ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
        * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))] / (1 + [x > 0] a/(b+x-1)
        ((alpha+T)/(alpha+t_x))^(r+x))``, with ``t`` in the summary's time units.
        """
        check_is_fitted(self)
        t = _non_negative_horizon(t)
        x, t_x, T = _purchase_history(summary)
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        unconditional = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        return unconditional / (1.0 + self._dead_to_alive_odds(x, t_x, T))

    def purchase_probability(self, summary: pd.DataFrame, t: float) -> np.ndarray:
        """P(at least one purchase in ``(T, T+t]`` | history).

        Under BG/NBD a customer can drop out only right after a purchase, so one who is
        alive at ``T`` and buys nothing in the window is still alive throughout it, and
        the first purchase in the window, if any, happens. Given alive at ``T``, the
        posterior of lambda is ``Gamma(r+x, alpha+T)``, so P(no purchase) is
        ``E[exp(-lambda t)] = ((alpha+T)/(alpha+T+t))^(r+x)``. Hence
        ``P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x))``.
        """
        check_is_fitted(self)
        t = _non_negative_horizon(t)
        x, t_x, T = _purchase_history(summary)
        no_purchase_if_alive = ((self.alpha_ + T) / (self.alpha_ + T + t)) ** (self.r_ + x)
        return (1.0 - no_purchase_if_alive) / (1.0 + self._dead_to_alive_odds(x, t_x, T))

    def purchase_count_pmf(self, summary: pd.DataFrame, t: float, max_count: int = 20) -> np.ndarray:
        """P(exactly n purchases in ``(T, T+t]`` | history) for n = 0 … ``max_count``, one row per customer.

        Alive at ``T``, the posterior is ``lambda ~ Gamma(r+x, alpha+T)`` independent of
        ``p ~ Beta(a, b+x)``. Given them, n purchases happen in the window and the
        customer survives the n-th (``(1-p)^n Poisson(n; lambda t)``), or at least n
        happen and the customer drops out right after the n-th (``p (1-p)^(n-1)
        P(Poisson(lambda t) >= n)``). Integrating gives negative binomial terms times
        ratios of Beta functions; a dead customer buys nothing. The last column holds
        the mass of ``max_count`` or more, so each row sums to 1.

        The whole distribution, not just its mean, is what a point forecast judged by
        absolute error needs: that forecast is the distribution's median.
        """
        check_is_fitted(self)
        t = _non_negative_horizon(t)
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, got {max_count}")
        x, t_x, T = _purchase_history(summary)
        r, alpha, a, b = self.r_ + x, self.alpha_ + T, self.a_, self.b_ + x
        n = np.arange(max_count + 1)[None, :]
        r, alpha, b = r[:, None], alpha[:, None], b[:, None]
        # Negative binomial pmf of the Poisson count once lambda is integrated out.
        log_nb = (gammaln(r + n) - gammaln(r) - gammaln(n + 1)
                  + r * np.log(alpha / (alpha + t)) + n * np.log(t / (alpha + t)) if t > 0 else
                  np.where(n == 0, 0.0, -np.inf))
        nb = np.exp(log_nb)
        at_least = np.clip(1.0 - np.cumsum(nb, axis=1) + nb, 0.0, 1.0)  # P(N >= n)
        survive = np.exp(betaln(a, b + n) - betaln(a, b))
        with np.errstate(invalid="ignore"):
            drop = np.where(n > 0, np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)), 0.0)
        alive_pmf = survive * nb + drop * at_least
        alive_pmf[:, -1] = np.clip(1.0 - alive_pmf[:, :-1].sum(axis=1), 0.0, 1.0)
        alive = (1.0 / (1.0 + self._dead_to_alive_odds(x, t_x, T)))[:, None]
        pmf = alive * alive_pmf
        pmf[:, 0] += 1.0 - alive[:, 0]
        return pmf

    def _dead_to_alive_odds(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return np.where(x > 0, odds, 0.0)


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma model of the average transaction value (Fader, Hardie & Lee 2005).

    Fitted on customers with at least one repeat purchase and a positive
    ``monetary_value`` (the mean value of their repeat purchases); it assumes spend is
    independent of purchase frequency, worth checking on the data (their correlation).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters added to the mean negative log-likelihood.

    Attributes
    ----------
    p_ : float
        Shape of the Gamma distribution of one transaction's value.
    q_, v_ : float
        Shape and rate of the Gamma distribution of that distribution's rate ``nu``.
    n_customers_ : int
        Customers the model was fitted on (``frequency > 0`` and ``monetary_value > 0``).
    log_likelihood_ : float
        Total log-likelihood of those customers at the fitted parameters (no penalty).
    """

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, summary: pd.DataFrame, y=None) -> GammaGammaModel:
        """Learn ``p_, q_, v_`` by maximum likelihood from ``frequency`` and ``monetary_value``."""
        x, m = _spend_history(summary)
        used = (x > 0) & (m > 0)
        if not used.any():
            raise ValueError("Cannot fit GammaGammaModel: no customer has frequency > 0 and monetary_value > 0")
        x, m = x[used], m[used]

        def objective(log_params):
            params = np.exp(log_params)
            ll, grad = _gamma_gamma_log_likelihood(params, x, m, with_gradient=True)
            value = -ll.mean() + self.penalizer * np.sum(params**2)
            gradient = -grad.mean(axis=0) * params + 2 * self.penalizer * params**2
            return value, gradient

        params = _maximise(objective, "GammaGammaModel")
        self.p_, self.q_, self.v_ = (float(v) for v in params)
        self.n_customers_ = int(used.sum())
        self.log_likelihood_ = float(_gamma_gamma_log_likelihood(params, x, m)[0].sum())
        return self

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """E[average transaction value | x, m_x]: the posterior mean, a weighted average.

        ``(q-1)/(p x+q-1) * p v/(q-1) + p x/(p x+q-1) * m_x``: the population mean
        ``p v/(q-1)`` shrunk towards the customer's own mean as their repeat purchases
        ``x`` grow. Customers with ``frequency`` 0 get the population mean. Needs
        ``q_ > 1`` (otherwise the mean spend does not exist).
        """
        check_is_fitted(self)
        if self.q_ <= 1:
            raise ValueError(f"Expected spend is undefined: fitted q_ = {self.q_:.3g} <= 1")
        x, m = _spend_history(summary)
        p, q, v = self.p_, self.q_, self.v_
        return p * (v + x * m) / (p * x + q - 1)


def _bgnbd_log_likelihood(params, x, t_x, T, with_gradient=False):
    """Per-customer BG/NBD log-likelihood (paper, equation 6) and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = params
    repeat = x > 0
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    alive = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.where(repeat, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    last = np.logaddexp(alive, dropped)
    ll = a1 + a2 + last
    if not with_gradient:
        return ll, None
    w_dropped = np.exp(dropped - last)        # share of the "dropped after t_x" branch
    w_alive = 1.0 - w_dropped
    psi_abx, psi_ab = digamma(a + b + x), digamma(a + b)
    safe = np.where(repeat, b + x - 1, 1.0)
    grad = np.column_stack([
        digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * np.log(alpha + T) - w_dropped * np.log(alpha + t_x),
        r / alpha - (r + x) * (w_alive / (alpha + T) + w_dropped / (alpha + t_x)),
        psi_ab - psi_abx + w_dropped / a,
        digamma(b + x) - digamma(b) + psi_ab - psi_abx - w_dropped / safe,
    ])
    return ll, grad


def _gamma_gamma_log_likelihood(params, x, m, with_gradient=False):
    """Per-customer Gamma-Gamma log-likelihood of the mean spend ``m`` over ``x`` purchases."""
    p, q, v = params
    px = p * x
    total = x * m + v
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(total))
    if not with_gradient:
        return ll, None
    psi_pxq = digamma(px + q)
    grad = np.column_stack([
        x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - np.log(total)),
        psi_pxq - digamma(q) + np.log(v) - np.log(total),
        q / v - (px + q) / total,
    ])
    return ll, grad


def _maximise(objective, name: str) -> np.ndarray:
    """Minimise ``objective`` over log-parameters from all ones (the lifetimes start)."""
    n_params = {"BetaGeoModel": 4, "GammaGammaModel": 3}[name]
    result = minimize(objective, np.zeros(n_params), jac=True, method="L-BFGS-B",
                      options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9})
    if not result.success:
        warnings.warn(f"{name} fit did not converge: {result.message}", ConvergenceWarning, stacklevel=3)
    return np.exp(result.x)


def _require_columns(frame, columns, what: str) -> None:
    """A frame, or a mapping of column name to array (one scored row: no frame to build)."""
    if not isinstance(frame, (pd.DataFrame, Mapping)):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    names = frame.columns if isinstance(frame, pd.DataFrame) else frame
    for column in columns:
        if column not in names:
            raise ValueError(f"Required column '{column}' missing from {what}")


def _numeric_column(summary, column: str) -> np.ndarray:
    given = summary[column]
    if isinstance(given, np.ndarray) and given.dtype == np.float64:
        values = given
    else:
        values = pd.to_numeric(given, errors="coerce")
        values = values.to_numpy(dtype=float) if isinstance(values, pd.Series) else np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"Column '{column}' of the summary has missing, infinite or non-numeric values")
    if (values < 0).any():
        raise ValueError(f"Column '{column}' of the summary has negative values")
    return values


def _frequency(summary: pd.DataFrame) -> np.ndarray:
    x = _numeric_column(summary, "frequency")
    if (x != np.round(x)).any():
        raise ValueError("Column 'frequency' of the summary must hold whole numbers (repeat purchase days)")
    return x


def _purchase_history(summary: pd.DataFrame):
    """``(x, t_x, T)`` from a summary, checked: whole x >= 0, 0 <= recency <= T, recency 0 when x is 0."""
    _require_columns(summary, ("frequency", "recency", "T"), "the summary")
    x = _frequency(summary)
    t_x = _numeric_column(summary, "recency")
    T = _numeric_column(summary, "T")
    if (t_x > T).any():
        raise ValueError("Column 'recency' of the summary exceeds column 'T' (the last purchase is after the end)")
    if ((x == 0) & (t_x > 0)).any():
        raise ValueError("Column 'recency' of the summary must be 0 where 'frequency' is 0")
    return x, t_x, T


def _distinct_histories(x, t_x, T, name: str):
    """The distinct ``(x, t_x, T)`` and how many customers share each: identical histories
    share one likelihood term, so a fit evaluates each once, weighted."""
    if len(x) == 0:
        raise ValueError(f"Cannot fit {name} on an empty summary")
    unique, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    return tuple(unique.T), counts


def _spend_history(summary: pd.DataFrame):
    _require_columns(summary, ("frequency", "monetary_value"), "the summary")
    return _frequency(summary), _numeric_column(summary, "monetary_value")


def _non_negative_horizon(t) -> float:
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"The horizon t must be a non-negative number of time units, got {t!r}")
    return float(t)
