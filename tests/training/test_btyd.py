"""The BTYD baseline: BG/NBD and Gamma-Gamma, checked three independent ways.

1. On the real CDNOW file, the fitted parameters match PyMC-Marketing 0.19.2's fit of the
   same summary (MAP with flat priors, i.e. maximum likelihood), and the summary of a few
   customers matches what their rows in the file say.
2. On data simulated from the BG/NBD story itself (exponential gaps, a coin flip after each
   repeat purchase), the fit recovers the generating parameters, and the closed-form
   predictions match what simulated customers go on to do.
3. Small cases worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from training.btyd import BetaGeoModel, GammaGammaModel, rfm_summary

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
CDNOW_AS_OF = dt.date(1997, 9, 30)   # the 39-week calibration period of the papers


# --- CDNOW: reference values -------------------------------------------------------------

@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    # CI and the README put ../shared beside the clone: a missing file is a broken setup, not a skip.
    assert CDNOW.is_file(), f"CDNOW master file not found at {CDNOW}: clone cdp-ml with ../shared beside it"
    # Whitespace-separated with a header line (customer_id date number_of_cds dollar_value), CRLF.
    raw = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    purchases = pd.DataFrame({"customer_id": raw["customer_id"],
                              "day": pd.to_datetime(raw["date"], format="%Y%m%d"),
                              "amount": raw["dollar_value"]})
    return rfm_summary(purchases, CDNOW_AS_OF, time_unit_days=7)


def test_cdnow_summary_of_hand_picked_customers(cdnow_summary):
    assert len(cdnow_summary) == 23_570                # every customer bought in Q1 1997
    # 00002: two orders on 12 Jan 1997 (12.00 + 77.00) are one purchase day, no repeat.
    # 12 Jan -> 30 Sep 1997 is 19+28+31+30+31+30+31+31+30 = 261 days.
    assert tuple(cdnow_summary.loc["00002"]) == pytest.approx((0, 0.0, 261 / 7, 0.0))
    # 00003: 2 Jan, 30 Mar, 2 Apr by the as-of date (15 Nov, 25 Nov, 28 May 1998 are after).
    # Repeat days are 30 Mar (20.76) and 2 Apr (19.54); 2 Jan -> 2 Apr is 29+28+31+2 = 90 days.
    assert tuple(cdnow_summary.loc["00003"]) == pytest.approx((2, 90 / 7, 271 / 7, (20.76 + 19.54) / 2))
    # 00004: 1 Jan, 18 Jan (29.73), 2 Aug (14.96); 12 Dec is after. 1 Jan -> 2 Aug is 213 days.
    assert tuple(cdnow_summary.loc["00004"]) == pytest.approx((2, 213 / 7, 272 / 7, (29.73 + 14.96) / 2))


def test_cdnow_fit_matches_pymc_marketing(cdnow_summary):
    started = time.perf_counter()
    bgnbd = BetaGeoModel().fit(cdnow_summary)
    bgnbd_seconds = time.perf_counter() - started
    started = time.perf_counter()
    gamma_gamma = GammaGammaModel().fit(cdnow_summary)
    gamma_gamma_seconds = time.perf_counter() - started

    assert bgnbd.n_customers_ == 23_570
    fitted = (bgnbd.r_, bgnbd.alpha_, bgnbd.a_, bgnbd.b_)
    assert fitted == pytest.approx((0.252, 4.79, 0.715, 2.127), rel=0.03)
    assert gamma_gamma.n_customers_ == 9_450        # frequency > 0 and monetary_value > 0
    assert (gamma_gamma.p_, gamma_gamma.q_, gamma_gamma.v_) == pytest.approx((6.28, 3.62, 14.98), rel=0.03)
    # The likelihood it reports is the paper's, and it is at least that of the reference's
    # (rounded) parameters: the optimiser found the maximum.
    assert bgnbd.log_likelihood_ == pytest.approx(_bgnbd_total_log_likelihood(fitted, cdnow_summary), rel=1e-9)
    assert bgnbd.log_likelihood_ >= _bgnbd_total_log_likelihood((0.252, 4.79, 0.715, 2.127), cdnow_summary)
    assert bgnbd_seconds < 2.0 and gamma_gamma_seconds < 2.0   # about 0.3 s each on 23.6k customers


def _bgnbd_total_log_likelihood(params, summary) -> float:
    """Sum over customers of the log of equation (6) of the paper, in plain Python:

    L = Γ(r+x) α^r / Γ(r) · B(a, b+x) / B(a, b) · [(α+T)^-(r+x) + [x>0] a/(b+x-1) (α+t_x)^-(r+x)]
    """
    r, alpha, a, b = params
    total = 0.0
    for (x, t_x, T), count in summary[["frequency", "recency", "T"]].value_counts().items():
        log_front = (math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
                     + math.lgamma(a + b) + math.lgamma(b + x) - math.lgamma(b) - math.lgamma(a + b + x))
        bracket = (alpha + T) ** -(r + x) + (a / (b + x - 1) * (alpha + t_x) ** -(r + x) if x > 0 else 0.0)
        total += count * (log_front + math.log(bracket))
    return total


# --- Simulation from the BG/NBD story ----------------------------------------------------

TRUE_PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}    # CDNOW-like, time in weeks
HORIZON_WEEKS = 26


def simulate_bgnbd(n: int, T: np.ndarray, horizon: float, seed: int, r, alpha, a, b):
    """Customers living the BG/NBD story from a first purchase at time 0.

    Each gets a rate ``lambda ~ Gamma(r, rate alpha)`` and a dropout probability
    ``p ~ Beta(a, b)``, buys after exponential gaps, and after each repeat purchase leaves
    for good with probability ``p``. Returns the summary at ``T`` and the number of
    purchases in ``(T, T + horizon]``.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    x, t_x, future = np.zeros(n, dtype=int), np.zeros(n), np.zeros(n, dtype=int)
    now, active = np.zeros(n), np.ones(n, dtype=bool)
    while active.any():
        who = np.flatnonzero(active)
        now[who] += rng.exponential(1.0, who.size) / rate[who]
        beyond = now[who] > T[who] + horizon
        active[who[beyond]] = False
        who = who[~beyond]
        past = now[who] <= T[who]
        x[who[past]] += 1
        t_x[who[past]] = now[who[past]]
        future[who[~past]] += 1
        active[who[rng.random(who.size) < dropout[who]]] = False
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T}), future


def fitted_bgnbd(r, alpha, a, b) -> BetaGeoModel:
    """A BG/NBD model holding given parameters, as if fitted."""
    model = BetaGeoModel()
    model.r_, model.alpha_, model.a_, model.b_ = r, alpha, a, b
    return model


@pytest.fixture(scope="module")
def simulated():
    n = 5_000
    T = np.random.default_rng(11).uniform(52, 104, n)   # one to two years of history
    return simulate_bgnbd(n, T, HORIZON_WEEKS, seed=12, **TRUE_PARAMS)


def test_fit_recovers_the_generating_parameters(simulated):
    summary, _ = simulated
    model = BetaGeoModel().fit(summary)
    # Tolerances are about 3 standard errors, measured over 30 seeds of this design:
    # a and b are known to be the weakly identified pair, their ratio much less so.
    assert model.r_ == pytest.approx(TRUE_PARAMS["r"], rel=0.10)
    assert model.alpha_ == pytest.approx(TRUE_PARAMS["alpha"], rel=0.15)
    assert model.a_ == pytest.approx(TRUE_PARAMS["a"], rel=0.25)
    assert model.b_ == pytest.approx(TRUE_PARAMS["b"], rel=0.30)
    mean_dropout = model.a_ / (model.a_ + model.b_)
    assert mean_dropout == pytest.approx(TRUE_PARAMS["a"] / (TRUE_PARAMS["a"] + TRUE_PARAMS["b"]), rel=0.10)
    # Maximum likelihood: the fit is at least as likely as the truth.
    assert model.log_likelihood_ >= _bgnbd_total_log_likelihood(tuple(TRUE_PARAMS.values()), summary)


def test_fitted_model_forecasts_the_simulated_holdout(simulated):
    summary, future = simulated
    model = BetaGeoModel().fit(summary)
    assert model.expected_purchases(summary, HORIZON_WEEKS).sum() == pytest.approx(future.sum(), rel=0.05)
    assert model.purchase_probability(summary, HORIZON_WEEKS).sum() == pytest.approx((future > 0).sum(), rel=0.05)


def test_predictions_match_simulated_futures_by_history():
    """Among many simulated customers, those with similar histories buy, on average, what
    the closed forms (at the true parameters) predict: E[future] averaged over a group of
    histories is the group's mean future count."""
    n = 200_000
    T = np.random.default_rng(21).uniform(52, 104, n)
    summary, future = simulate_bgnbd(n, T, HORIZON_WEEKS, seed=22, **TRUE_PARAMS)
    model = fitted_bgnbd(**TRUE_PARAMS)
    frame = pd.DataFrame({
        "group": pd.cut(summary["frequency"], [-1, 0, 1, 3, 7, np.inf]),
        "expected": model.expected_purchases(summary, HORIZON_WEEKS), "bought": future,
        "probability": model.purchase_probability(summary, HORIZON_WEEKS), "any": future > 0,
    })
    groups = frame.groupby("group", observed=True)
    for column, outcome in (("expected", "bought"), ("probability", "any")):
        predicted, observed = groups[column].mean(), groups[outcome].mean()
        standard_error = groups[outcome].std() / np.sqrt(groups.size())
        assert (abs(predicted - observed) < 4 * standard_error).all(), (column, predicted, observed)
        assert predicted.to_numpy() == pytest.approx(observed.to_numpy(), rel=0.04)


@pytest.mark.parametrize("x, t_x, T", [(0, 0, 40), (1, 30, 40), (4, 39, 40), (4, 5, 40), (30, 100, 104)])
def test_predictions_match_simulation_for_one_exact_history(x, t_x, T):
    """For one history, draw (lambda, p) from the prior weighted by the likelihood of that
    history (Bayes, no closed form), pick alive or not with its probability given those,
    and simulate the next 26 weeks of the alive ones."""
    rng = np.random.default_rng(31)
    r, alpha, a, b = TRUE_PARAMS.values()
    rate, dropout = rng.gamma(r, 1 / alpha, 200_000), rng.beta(a, b, 200_000)
    log_alive = x * np.log(rate) + x * np.log1p(-dropout) - rate * T
    if x > 0:
        log_dropped = x * np.log(rate) + np.log(dropout) + (x - 1) * np.log1p(-dropout) - rate * t_x
    else:
        log_dropped = np.full_like(rate, -np.inf)
    log_weight = np.logaddexp(log_alive, log_dropped)
    weight = np.exp(log_weight - log_weight.max())
    alive = rng.random(rate.size) < np.exp(log_alive - log_weight)
    future = _future_purchases(rate, dropout, HORIZON_WEEKS, rng) * alive

    customer = history(x, t_x, T)
    model = fitted_bgnbd(**TRUE_PARAMS)
    assert model.probability_alive(customer)[0] == pytest.approx(np.average(alive, weights=weight), rel=0.03)
    assert model.expected_purchases(customer, HORIZON_WEEKS)[0] == pytest.approx(
        np.average(future, weights=weight), rel=0.03)
    assert model.purchase_probability(customer, HORIZON_WEEKS)[0] == pytest.approx(
        np.average(future > 0, weights=weight), rel=0.03)


@pytest.mark.parametrize("x, t_x, T", [(0, 0, 40), (1, 30, 40), (4, 39, 40), (4, 5, 40), (30, 100, 104)])
def test_the_count_distribution_matches_simulation_for_one_history(x, t_x, T):
    """Alive with P(alive), the customer's (lambda, p) follow Gamma(r+x, alpha+T) and
    Beta(a, b+x) (the posterior the test above checks by importance weights); simulate
    the next 26 weeks from it and compare the distribution of counts (5 or more pooled)."""
    rng = np.random.default_rng(41)
    r, alpha, a, b = TRUE_PARAMS.values()
    model = fitted_bgnbd(**TRUE_PARAMS)
    customer = history(x, t_x, T)
    n = 400_000
    rate, dropout = rng.gamma(r + x, 1 / (alpha + T), n), rng.beta(a, b + x, n)
    alive = rng.random(n) < model.probability_alive(customer)[0]
    future = _future_purchases(rate, dropout, HORIZON_WEEKS, rng) * alive
    simulated_pmf = [np.mean(np.minimum(future, 5) == k) for k in range(6)]
    assert model.purchase_count_pmf(customer, HORIZON_WEEKS, max_count=5)[0] == pytest.approx(simulated_pmf, abs=0.004)


def test_the_count_distribution_agrees_with_the_closed_forms():
    """The pmf's P(0) is one minus the purchase probability, its mean the expected count."""
    model = fitted_bgnbd(**TRUE_PARAMS)
    customers = pd.concat([history(0, 0, 40), history(1, 30, 40), history(4, 39, 40), history(30, 100, 104)])
    pmf = model.purchase_count_pmf(customers, HORIZON_WEEKS, max_count=200)
    assert pmf.sum(axis=1) == pytest.approx(1.0, abs=1e-9)
    assert 1 - pmf[:, 0] == pytest.approx(model.purchase_probability(customers, HORIZON_WEEKS), rel=1e-9)
    assert pmf @ np.arange(201) == pytest.approx(model.expected_purchases(customers, HORIZON_WEEKS), rel=1e-6)
    assert (model.purchase_count_pmf(customers, 0.0)[:, 0] == 1.0).all()


def _future_purchases(rate, dropout, horizon, rng) -> np.ndarray:
    """Purchases in a window of ``horizon`` by customers alive at its start."""
    count, now, active = np.zeros(rate.size, dtype=int), np.zeros(rate.size), np.ones(rate.size, dtype=bool)
    while active.any():
        who = np.flatnonzero(active)
        now[who] += rng.exponential(1.0, who.size) / rate[who]
        beyond = now[who] > horizon
        active[who[beyond]] = False
        who = who[~beyond]
        count[who] += 1
        active[who[rng.random(who.size) < dropout[who]]] = False
    return count


# --- Small cases by hand -----------------------------------------------------------------

TINY_AS_OF = dt.date(2025, 2, 12)
TINY = pd.DataFrame([
    ("A", "2025-01-01 09:00", 100.0),
    ("A", "2025-01-01 18:00", 50.0),    # same day: one purchase day of 150
    ("A", "2025-01-15 12:00", 30.0),
    ("A", "2025-01-29 10:00", 20.0),
    ("A", "2025-01-29 11:00", 10.0),    # a repeat day of 30
    ("A", "2025-02-13 00:00", 999.0),   # the day after the as-of date: ignored
    ("B", "2025-01-22 08:00", 40.0),
    ("B", "2025-01-22 20:00", 60.0),    # B bought on one day only
    ("C", "2025-02-20 10:00", 70.0),    # only after the as-of date: no row
], columns=["customer_id", "day", "amount"]).assign(day=lambda f: pd.to_datetime(f["day"]))


def test_rfm_summary_by_hand():
    summary = rfm_summary(TINY, TINY_AS_OF, time_unit_days=7)
    assert list(summary.index) == ["A", "B"]
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary_value"]
    # A: days 1 Jan, 15 Jan, 29 Jan; 1 Jan -> 29 Jan is 4 weeks, 1 Jan -> 12 Feb is 6 weeks.
    assert tuple(summary.loc["A"]) == (2, 4.0, 6.0, 30.0)         # repeat days 30 and 30
    # B: 22 Jan -> 12 Feb is 3 weeks; no repeat day, so no repeat spend.
    assert tuple(summary.loc["B"]) == (0, 0.0, 3.0, 0.0)


def test_rfm_summary_in_days_from_date_objects():
    as_dates = TINY.assign(day=TINY["day"].dt.date)               # datetime.date values
    summary = rfm_summary(as_dates, TINY_AS_OF, time_unit_days=1)
    assert tuple(summary.loc["A"]) == (2, 28.0, 42.0, 30.0)
    assert tuple(summary.loc["B"]) == (0, 0.0, 21.0, 0.0)


def history(x, t_x, T) -> pd.DataFrame:
    return pd.DataFrame({"frequency": [x], "recency": [float(t_x)], "T": [float(T)]})


def test_purchase_probability_by_hand():
    model = fitted_bgnbd(r=0.5, alpha=10.0, a=1.5, b=3.0)
    # x = 0: no repeat purchase, so no chance to have dropped out; alive for sure.
    new = history(0, 0, 20)
    assert model.probability_alive(new)[0] == 1.0
    assert model.purchase_probability(new, 10)[0] == pytest.approx(1 - math.sqrt(30 / 40))   # 0.13397
    # x = 2, t_x = 8, T = 20: odds of having dropped = 1.5/4 * (30/18)^2.5 = 1.344785.
    regular = history(2, 8, 20)
    p_alive = 1 / (1 + 1.5 / 4 * (30 / 18) ** 2.5)                                            # 0.42648
    assert model.probability_alive(regular)[0] == pytest.approx(p_alive)
    assert model.purchase_probability(regular, 10)[0] == pytest.approx(p_alive * (1 - 0.75 ** 2.5))
    assert model.purchase_probability(regular, 0)[0] == 0.0


def test_expected_purchases_starts_at_the_posterior_rate_of_the_alive():
    """For a short window, E[purchases] ~ P(alive) * E[lambda | alive] * t = P(alive) (r+x)/(alpha+T) t."""
    model = fitted_bgnbd(r=0.5, alpha=10.0, a=1.5, b=3.0)
    t = 1e-6
    assert model.expected_purchases(history(0, 0, 20), t)[0] == pytest.approx(0.5 / 30 * t, rel=1e-5)
    p_alive = 1 / (1 + 1.5 / 4 * (30 / 18) ** 2.5)
    assert model.expected_purchases(history(2, 8, 20), t)[0] == pytest.approx(p_alive * 2.5 / 30 * t, rel=1e-5)


def test_gamma_gamma_expected_spend_by_hand():
    model = GammaGammaModel()
    model.p_, model.q_, model.v_ = 6.0, 4.0, 15.0
    summary = pd.DataFrame({"frequency": [3, 0], "monetary_value": [20.0, 0.0]})
    # Population mean p v/(q-1) = 30; weight on the customer's own mean p x/(p x+q-1) = 18/21.
    assert model.expected_spend(summary) == pytest.approx([3 / 21 * 30 + 18 / 21 * 20, 30.0])   # 21.43, 30


def test_estimators_follow_the_scikit_learn_contract(simulated):
    summary, _ = simulated
    for estimator in (BetaGeoModel(penalizer=0.1), GammaGammaModel(penalizer=0.1)):
        assert clone(estimator).get_params() == {"penalizer": 0.1}
    with pytest.raises(NotFittedError):
        BetaGeoModel().expected_purchases(summary, 10)
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_spend(summary.assign(monetary_value=1.0))
    plain, shrunk = BetaGeoModel().fit(summary), BetaGeoModel(penalizer=0.1).fit(summary)
    assert (sum(v**2 for v in (shrunk.r_, shrunk.alpha_, shrunk.a_, shrunk.b_))
            < sum(v**2 for v in (plain.r_, plain.alpha_, plain.a_, plain.b_)))


# --- Bad input ---------------------------------------------------------------------------

GOOD = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 4.0], "T": [3.0, 6.0], "monetary_value": [0.0, 30.0]})


@pytest.mark.parametrize("bad, column", [
    (GOOD.drop(columns="T"), "'T'"),
    (GOOD.drop(columns="recency"), "'recency'"),
    (GOOD.assign(frequency=[0, -1]), "'frequency'"),
    (GOOD.assign(frequency=[0, 1.5]), "'frequency'"),
    (GOOD.assign(recency=[0.0, -4.0]), "'recency'"),
    (GOOD.assign(recency=[0.0, 7.0]), "'recency'"),            # after the end of observation
    (GOOD.assign(T=[3.0, np.nan]), "'T'"),
])
def test_bad_summary_is_refused_naming_the_column(bad, column):
    with pytest.raises(ValueError, match=column):
        BetaGeoModel().fit(bad)
    with pytest.raises(ValueError, match=column):
        fitted_bgnbd(0.5, 10.0, 1.5, 3.0).expected_purchases(bad, 10)


@pytest.mark.parametrize("bad, column", [
    (GOOD.drop(columns="monetary_value"), "'monetary_value'"),
    (GOOD.assign(monetary_value=[0.0, -30.0]), "'monetary_value'"),
])
def test_bad_spend_summary_is_refused_naming_the_column(bad, column):
    with pytest.raises(ValueError, match=column):
        GammaGammaModel().fit(bad)


@pytest.mark.parametrize("column", ["customer_id", "day", "amount"])
def test_purchases_without_a_column_are_refused_naming_it(column):
    with pytest.raises(ValueError, match=f"'{column}'"):
        rfm_summary(TINY.drop(columns=column), TINY_AS_OF)
