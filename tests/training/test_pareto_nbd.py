"""Pareto/NBD, checked three independent ways.

1. At fixed parameters, the log-likelihood, P(alive), expected purchases and the chance of
   a purchase in 39 weeks equal mpmath's numerical integrals of the model's definition at
   40 digits (no hypergeometric function: the integral over the time of death, E[min(
   lifetime, t)] as the integral of the survival curve, and so on; script in the test's
   docstring), on both branches (alpha >= beta and alpha < beta), for histories from
   "bought once" to 80 repeat purchases, and with s = 1, where the expectation's closed
   form has a removable singularity.
2. On the real CDNOW file, the fit matches the lifetimes package's (0.11.3,
   `ParetoNBDFitter`) on the same summary, and at lifetimes' parameters our conditional
   expectations and no-purchase probabilities equal its answers for hand-picked customers.
3. On customers simulated from the Pareto/NBD story, the fit recovers the generating
   parameters and the forecasts match what the simulated customers went on to do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tests.training.test_btyd import cdnow_summary  # noqa: F401  (the CDNOW summary fixture)
from training.pareto_nbd import ParetoNBDModel, pareto_nbd_log_likelihood

HISTORIES = [(0, 0.0, 38.0), (1, 10.0, 38.0), (5, 30.0, 38.0), (20, 35.0, 38.0), (2, 0.14, 27.0), (80, 38.0, 39.0)]
# mpmath (mp.dps = 40), per history: log-likelihood, P(alive), E[X(39)], P(X(39) > 0), from
#   I = quad((al+u)^-(r+x) (be+u)^-(s+1), [tx, T]); A = (al+T)^-(r+x) (be+T)^-s
#   ll = loggamma(r+x) - loggamma(r) + r log al + s log be + log(A + s I); P(alive) = A / (A + s I)
#   E = P(alive) (r+x)/(al+T) quad(((be+T)/(be+T+u))^s, [0, t])
#   P = P(alive) (1 - ((al+T)/(al+T+t))^(r+x) ((be+T)/(be+T+t))^s
#                  - quad(s (be+T)^s/(be+T+u)^(s+1) ((al+T)/(al+T+u))^(r+x), [0, t]))
MPMATH = {
    (0.6, 11.6, 0.52, 8.8): [      # alpha >= beta
        (-0.522110250189636, 0.2956232139000234, 0.11774230697580583, 0.07516785958313937),
        (-5.30302867396958, 0.4263189110721114, 0.45279053188310153, 0.22631743833161846),
        (-17.37698138868482, 0.8503791312099941, 3.1611374300542505, 0.7527732802927828),
        (-39.01833046179592, 0.9331720070501804, 12.76061715742707, 0.9089167393198057),
        (-6.519089683030515, 0.10236123721687615, 0.2182033252996638, 0.07505910057108164),
        (-44.132160173977, 0.9732290236054146, 51.187246627667406, 0.9666320799506184)],
    (0.6, 2.0, 0.52, 80.0): [      # alpha < beta, far apart
        (-1.631492463206035, 0.6920832302853547, 0.3749168190891413, 0.21775170681444098),
        (-5.857963583688151, 0.7108576977542488, 1.0268996375177466, 0.44616265987387954),
        (-16.651631760149883, 0.931808991745488, 4.711294702283819, 0.8832059733023635),
        (-35.01130478009199, 0.9678041539392651, 18.000312688256574, 0.9593297840508587),
        (-6.295722572145522, 0.106949617928262, 0.3438614698017764, 0.09102586844092832),
        (-27.57009298201925, 0.9862580503331684, 70.06152270029463, 0.9840528578144934)],
    (0.55, 10.58, 1.0, 11.67): [   # s = 1 exactly, near the published 1/10-sample fit
        (-0.40376545510049255, 0.15214065850344155, 0.04958078770217384, 0.03248096947278509),
        (-5.39703614176526, 0.2539220271504111, 0.2332048164517361, 0.12050649774732945),
        (-17.855814060657572, 0.7494807184409241, 2.4646706228241158, 0.6233805760230949),
        (-39.32419309542767, 0.8821119892091845, 10.740907886496883, 0.8419962598332883),
        (-6.211677338052087, 0.04522885588875135, 0.08276719192158676, 0.030050245136481815),
        (-43.33530835741862, 0.951311615961381, 44.70111944424411, 0.9398912265041305)],
}


def fitted(r, alpha, s, beta) -> ParetoNBDModel:
    """A Pareto/NBD model holding given parameters, as if fitted."""
    model = ParetoNBDModel()
    model.r_, model.alpha_, model.s_, model.beta_ = r, alpha, s, beta
    return model


def summary_of(histories) -> pd.DataFrame:
    return pd.DataFrame(histories, columns=["frequency", "recency", "T"])


@pytest.mark.parametrize("params", list(MPMATH))
def test_closed_forms_equal_numerical_integrals_of_the_model(params):
    summary = summary_of(HISTORIES)
    expected = np.array(MPMATH[params])
    model = fitted(*params)
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    assert pareto_nbd_log_likelihood(np.array(params), x, t_x, T) == pytest.approx(expected[:, 0], rel=1e-10)
    assert model.probability_alive(summary) == pytest.approx(expected[:, 1], rel=1e-9)
    assert model.expected_purchases(summary, 39) == pytest.approx(expected[:, 2], rel=1e-9)
    assert model.purchase_probability(summary, 39) == pytest.approx(expected[:, 3], rel=1e-9)


def test_expectation_is_continuous_through_s_equal_one():
    summary = summary_of(HISTORIES)
    at_one = fitted(0.55, 10.58, 1.0, 11.67).expected_purchases(summary, 39)
    for s in (1 - 1e-6, 1 + 1e-6):
        assert fitted(0.55, 10.58, s, 11.67).expected_purchases(summary, 39) == pytest.approx(at_one, rel=1e-5)


# lifetimes 0.11.3's ParetoNBDFitter on the same summary (rfm_summary as of 1997-09-30, weeks).
LIFETIMES_PARAMS = (0.5973954532424943, 11.585265833029087, 0.5222209168914104, 8.829650225968875)
# At those parameters: conditional_expected_number_of_purchases_up_to_time(13 | 39) and
# conditional_probability_of_n_purchases_up_to_time(0, 13 | 39), same customers.
LIFETIMES_ANSWERS = {
    "customers": ["00001", "00002", "00003", "00010", "00100", "01000", "10000", "23570"],
    13: ([0.0418996809, 0.0445113072, 0.2421911551, 0.0468299229,
          0.0418996809, 0.0465636492, 0.5923662323, 0.1069127695],
         [0.9650272677, 0.9630363223, 0.8363880415, 0.9612812465,
          0.9650272677, 0.9614822185, 0.61395451, 0.9255241279]),
    39: ([0.1134326177, 0.1201963904, 0.6555219139, 0.1261818799,
          0.1134326177, 0.125495402, 1.5895583608, 0.2828449338],
         [0.9271293365, 0.923580074, 0.7343397794, 0.9204817731,
          0.9271293365, 0.9208351505, 0.3951616647, 0.8753190527]),
}


def test_cdnow_fit_matches_lifetimes(cdnow_summary):  # noqa: F811
    model = ParetoNBDModel().fit(cdnow_summary)
    assert (model.r_, model.alpha_, model.s_, model.beta_) == pytest.approx(LIFETIMES_PARAMS, rel=2e-3)
    x, t_x, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    at_lifetimes = pareto_nbd_log_likelihood(np.array(LIFETIMES_PARAMS), x, t_x, T).sum()
    assert model.log_likelihood_ >= at_lifetimes - 1e-6      # as good a maximum, or better
    assert model.n_customers_ == 23_570


def test_cdnow_forecasts_match_lifetimes_at_its_parameters(cdnow_summary):  # noqa: F811
    model = fitted(*LIFETIMES_PARAMS)
    picked = cdnow_summary.loc[LIFETIMES_ANSWERS["customers"]]
    for weeks in (13, 39):
        expected, none = LIFETIMES_ANSWERS[weeks]
        assert model.expected_purchases(picked, weeks) == pytest.approx(expected, abs=1e-9)
        assert 1 - model.purchase_probability(picked, weeks) == pytest.approx(none, abs=1e-9)


# --- Simulation from the Pareto/NBD story ------------------------------------------------

TRUE = (0.6, 10.0, 0.6, 12.0)


def simulate(n: int, T: np.ndarray, horizon: float, seed: int, r, alpha, s, beta):
    """Customers living the Pareto/NBD story from a first purchase at time 0: Poisson
    purchases at rate ``lambda ~ Gamma(r, alpha)`` until an exponential death at rate
    ``mu ~ Gamma(s, beta)``. Returns the summary at ``T`` and the purchases in ``(T, T+horizon]``."""
    rng = np.random.default_rng(seed)
    rate, death = rng.gamma(r, 1 / alpha, n), rng.exponential(1.0, n) / rng.gamma(s, 1 / beta, n)
    x, t_x, future = np.zeros(n, dtype=int), np.zeros(n), np.zeros(n, dtype=int)
    now, active = np.zeros(n), np.ones(n, dtype=bool)
    while active.any():
        who = np.flatnonzero(active)
        now[who] += rng.exponential(1.0, who.size) / rate[who]
        over = (now[who] > np.minimum(death[who], T[who] + horizon))
        active[who[over]] = False
        who = who[~over]
        past = now[who] <= T[who]
        x[who[past]] += 1
        t_x[who[past]] = now[who[past]]
        future[who[~past]] += 1
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": T}), future


@pytest.fixture(scope="module")
def simulated():
    n = 20_000
    T = np.random.default_rng(3).uniform(26, 52, n)
    return simulate(n, T, 39, seed=4, **dict(zip(("r", "alpha", "s", "beta"), TRUE)))


def test_fit_recovers_the_generating_parameters(simulated):
    summary, _ = simulated
    model = ParetoNBDModel().fit(summary)
    # The purchase side is sharply identified; the dropout side less so (s and beta move
    # together: this sample gives s 0.51, beta 9.2), but their ratio, the mean dropout
    # rate, is; and the maximum is at least as likely as the truth.
    assert (model.r_, model.alpha_) == pytest.approx(TRUE[:2], rel=0.1)
    assert model.s_ / model.beta_ == pytest.approx(TRUE[2] / TRUE[3], rel=0.15)
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    assert model.log_likelihood_ >= pareto_nbd_log_likelihood(np.array(TRUE), x, t_x, T).sum()


def test_forecasts_match_what_simulated_customers_did(simulated):
    summary, future = simulated
    model = fitted(*TRUE)
    expected = model.expected_purchases(summary, 39)
    probability = model.purchase_probability(summary, 39)
    for group in (summary["frequency"] == 0, summary["frequency"].between(1, 3), summary["frequency"] >= 4):
        # 4 standard errors of the simulated mean: a wrong formula is off by far more.
        se = future[group].std() / np.sqrt(group.sum())
        assert abs(expected[group].mean() - future[group].mean()) < 4 * se
        share = (future[group] > 0).mean()
        assert abs(probability[group].mean() - share) < 4 * np.sqrt(share * (1 - share) / group.sum())


def test_estimator_contract_and_bad_input(simulated):
    summary, _ = simulated
    assert clone(ParetoNBDModel(penalizer=0.1)).get_params() == {"penalizer": 0.1}
    with pytest.raises(NotFittedError):
        ParetoNBDModel().expected_purchases(summary, 10)
    with pytest.raises(ValueError, match="'recency'"):
        fitted(*TRUE).probability_alive(summary_of([(0, 2.0, 5.0)]))
    with pytest.raises(ValueError, match="horizon"):
        fitted(*TRUE).purchase_probability(summary_of([(1, 2.0, 5.0)]), -1)
    with pytest.raises(ValueError, match="empty"):
        ParetoNBDModel().fit(summary.iloc[:0])
