"""The Great Expectations suites that gate raw sales (GX 1.x: suite, validation definition, checkpoint).

Two suites: one on the rows themselves, one on a per-day profile derived from them (rows of the
day and mean units per category, each relative to the trailing mean of earlier days), which is
how a truncated file or a change of units shows up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.run_identifier import RunIdentifier

from demandops.contract import REQUIRED_SALES_COLUMNS
from demandops.settings import GateSettings
from salesdata.plausibility import units_vs_reference

PARTITION_COLUMN = "_partition"  # the period label of the file a row was read from
RATIO_COLUMN = "_units_vs_history"  # units over the largest other value of the series (plausibility.py)
DOCS_SITE = "quarantine"
NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "Float64", "Int64"]


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str
    success: bool
    unexpected_count: int
    sample: list
    unexpected_index: list = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    outcomes: list[ExpectationOutcome]
    docs: list[str] = field(default_factory=list)  # Data Docs pages of this validation, when rendered

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def raw_sales_suite(
    *, columns: list[str], stores: list[str], skus: list[str], gate: GateSettings
) -> gx.ExpectationSuite:
    """Schema and types, non-null keys, plausible units, price > 0, unique rows, right day, known ids."""
    e = gx.expectations
    suite = gx.ExpectationSuite(name="raw_sales_suite")
    suite.add_expectation(e.ExpectTableColumnsToMatchSet(column_set=list(REQUIRED_SALES_COLUMNS), exact_match=False))
    for column in REQUIRED_SALES_COLUMNS:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(e.ExpectColumnValuesToBeInTypeList(column="units_sold", type_list=NUMERIC_TYPES))
    # Infinite values fail the upper bound: every stored number is finite.
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="units_sold", min_value=0, max_value=gate.max_units))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=RATIO_COLUMN, max_value=gate.max_units_vs_history))
    if "price" in columns:
        suite.add_expectation(
            e.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True, max_value=gate.max_price)
        )
    if "stock_on_hand" in columns:
        suite.add_expectation(
            e.ExpectColumnValuesToBeBetween(column="stock_on_hand", min_value=0, max_value=gate.max_units)
        )
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=["date", "store_id", "sku_id"]))
    suite.add_expectation(e.ExpectColumnPairValuesToBeEqual(column_A="date", column_B=PARTITION_COLUMN))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="store_id", value_set=stores))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="sku_id", value_set=skus))
    return suite


def daily_profile_suite(settings: GateSettings) -> gx.ExpectationSuite:
    """Each day's row count and per-category mean units stay near their trailing means."""
    e = gx.expectations
    suite = gx.ExpectationSuite(name="raw_sales_daily_profile")
    low, high = settings.row_count_band
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="rows_ratio", min_value=low, max_value=high))
    low, high = settings.category_mean_band
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="category_mean_ratio", min_value=low, max_value=high))
    return suite


class SalesValidator:
    """One ephemeral GX context with a checkpoint per suite, reused for every batch of a run.

    With docs_dir, the validations of quarantined partitions can also be rendered as a GX Data
    Docs site there (`document`), one page per partition and suite.
    """

    def __init__(
        self,
        *,
        columns: list[str],
        stores: list[str],
        skus: list[str],
        gate: GateSettings,
        docs_dir: Path | None = None,
    ):
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False}
        source = self.context.data_sources.add_pandas("sales")
        suites = {
            "rows": self.context.suites.add(raw_sales_suite(columns=columns, stores=stores, skus=skus, gate=gate)),
            "profile": self.context.suites.add(daily_profile_suite(gate)),
        }
        self._rows = self._checkpoint(source, "rows", suites["rows"])
        self._profile = self._checkpoint(source, "profile", suites["profile"], result_format="COMPLETE")
        self._documented = {}
        if docs_dir is not None:
            self.context.add_data_docs_site(
                DOCS_SITE,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
            docs = [UpdateDataDocsAction(name="quarantine_docs", site_names=[DOCS_SITE])]
            self._documented = {
                name: self._checkpoint(source, f"{name}_documented", suite, actions=docs)
                for name, suite in suites.items()
            }

    def _checkpoint(self, source, name: str, suite, result_format: str = "SUMMARY", actions=()):
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}_validation", data=batch, suite=suite)
        )
        return self.context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_checkpoint",
                validation_definitions=[definition],
                result_format=result_format,
                actions=list(actions),
            )
        )

    def validate_rows(self, frame: pd.DataFrame) -> ValidationReport:
        return _report(self._rows.run(batch_parameters={"dataframe": frame}))

    def validate_profile(self, profile: pd.DataFrame) -> ValidationReport:
        return _report(self._profile.run(batch_parameters={"dataframe": profile}))

    def document(self, suite: str, frame: pd.DataFrame, partition: str) -> list[str]:
        """Validate again with the Data Docs action; returns the rendered pages (file URLs)."""
        if not self._documented:
            return []
        result = self._documented[suite].run(
            batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=partition)
        )
        return [
            site["site_url"]
            for identifier in result.run_results
            for site in self.context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
        ]


def _report(result) -> ValidationReport:
    outcomes = []
    for run in result.run_results.values():
        for r in run.results:
            kwargs = r.expectation_config.kwargs
            column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A") or ""
            outcomes.append(
                ExpectationOutcome(
                    expectation=r.expectation_config.type,
                    column=str(column),
                    success=bool(r.success),
                    unexpected_count=int(r.result.get("unexpected_count") or 0),
                    sample=list(r.result.get("partial_unexpected_list") or [])[:5],
                    unexpected_index=list(r.result.get("unexpected_index_list") or []),
                )
            )
    return ValidationReport(success=bool(result.success), outcomes=outcomes)


def as_gated(frame: pd.DataFrame, partition=None, history_max: pd.Series | None = None) -> pd.DataFrame:
    """Rows with the columns the row suite judges beside the data: the period of the file they were
    read from (default: their own date) and their units relative to the rest of their series."""
    return frame.assign(
        **{
            PARTITION_COLUMN: frame["date"] if partition is None else partition,
            RATIO_COLUMN: units_vs_reference(frame, history_max),
        }
    )


def validate_sales(frame: pd.DataFrame, *, stores: list[str], skus: list[str]) -> ValidationReport:
    """Validate rows that carry their partition day in PARTITION_COLUMN (one-off convenience)."""
    validator = SalesValidator(columns=list(frame.columns), stores=stores, skus=skus, gate=GateSettings())
    return validator.validate_rows(as_gated(frame, frame[PARTITION_COLUMN]))
