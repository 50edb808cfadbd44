"""The Great Expectations suite that gates raw sales (GX 1.x: suite, validation definition, checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations as gx
import pandas as pd

from demandops.contract import REQUIRED_SALES_COLUMNS

SUITE_NAME = "raw_sales_suite"


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str
    success: bool
    unexpected_count: int
    sample: list


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    outcomes: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def raw_sales_suite() -> gx.ExpectationSuite:
    """Schema, non-null keys, non-negative units, one row per (date, store, sku)."""
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    suite.add_expectation(
        gx.expectations.ExpectTableColumnsToMatchSet(column_set=list(REQUIRED_SALES_COLUMNS), exact_match=False)
    )
    for column in REQUIRED_SALES_COLUMNS:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeOfType(column="units_sold", type_="float64"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="units_sold", min_value=0))
    suite.add_expectation(gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=["date", "store_id", "sku_id"]))
    return suite


def validate_sales(frame: pd.DataFrame) -> ValidationReport:
    """Run the suite through a GX checkpoint on an in-memory frame."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("sales")
        .add_dataframe_asset("raw_sales")
        .add_batch_definition_whole_dataframe("partitions")
    )
    suite = context.suites.add(raw_sales_suite())
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="raw_sales_validation", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name="raw_sales_checkpoint", validation_definitions=[definition])
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    outcomes = [
        ExpectationOutcome(
            expectation=r.expectation_config.type,
            column=str(
                r.expectation_config.kwargs.get("column") or r.expectation_config.kwargs.get("column_list") or ""
            ),
            success=bool(r.success),
            unexpected_count=int(r.result.get("unexpected_count") or 0),
            sample=list(r.result.get("partial_unexpected_list") or [])[:5],
        )
        for run in result.run_results.values()
        for r in run.results
    ]
    return ValidationReport(success=bool(result.success), outcomes=outcomes)
