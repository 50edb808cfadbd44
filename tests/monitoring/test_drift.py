"""PSI: zero for the same distribution, in the bands for known shifts, finite for unseen ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import band, drift_table, psi, unseen_share


def test_psi_is_near_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(10, 2, 20_000)
    assert psi(reference, rng.normal(10, 2, 5_000)) < 0.01
    small, large = psi(reference, rng.normal(10.8, 2, 5_000)), psi(reference, rng.normal(12, 2, 5_000))
    assert band(small) == "moderate", small  # 0.4 sd: PSI about 0.16
    assert band(large) == "significant" and large > small
    assert np.isfinite(psi(reference, rng.normal(100, 1, 500))), "a range never seen is large, not infinite"


def test_a_mostly_zero_feature_gets_the_bins_it_has() -> None:
    reference = np.r_[np.zeros(900), np.arange(1, 101)]
    assert psi(reference, reference.copy()) == pytest.approx(0.0, abs=1e-12)
    assert band(psi(reference, np.r_[np.zeros(300), np.arange(1, 701) % 100 + 1])) == "significant"


def test_the_table_skips_features_a_catalogue_lacks_and_sorts_by_drift() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000), "price": np.nan})
    recent = pd.DataFrame({"a": rng.normal(0, 1, 500), "b": rng.normal(2, 1, 500), "price": np.nan})
    table = drift_table(reference, recent, ["a", "b", "price"])
    assert table["feature"].tolist() == ["b", "a"] and table["band"].tolist() == ["significant", "stable"]


def test_psi_refuses_an_empty_side() -> None:
    with pytest.raises(ValueError, match="both sides"):
        psi(np.array([np.nan]), np.array([1.0]))


def test_unseen_share_counts_series_of_stores_or_skus_the_model_never_saw() -> None:
    recent = pd.DataFrame({"store_id": ["S1", "S1", "S2", "S9"], "sku_id": ["P1", "P7", "P1", "P1"]})
    assert unseen_share(recent, ["S1", "S2"], ["P1"]) == 0.5
