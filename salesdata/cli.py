"""`demandops data ...`: create and inspect the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from demandops.errors import DemandopsError
from demandops.frequency import Frequency
from demandops.settings import get_settings

# Each command imports the dataset code (Great Expectations, DVC, the simulator) itself: this module is
# imported by every `demandops` command, `demandops deploy` during a switch among them.
app = typer.Typer(help="Create and version the sales dataset.", no_args_is_help=True)


@app.command("generate")
def generate_command(
    preset: Annotated[str, typer.Option(help="Simulator preset: small, default or large.")] = "default",
    out: Annotated[Path | None, typer.Option(help="Target folder (default: the settings' data folder).")] = None,
    track: Annotated[bool, typer.Option(help="Record the new version with DVC (dvc add).")] = True,
    stores: Annotated[int | None, typer.Option(min=1, help="Stores, instead of the preset's.")] = None,
    skus: Annotated[int | None, typer.Option(min=1, help="SKUs per store, instead of the preset's.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days of history, instead of the preset's.")] = None,
) -> None:
    """Write a seeded, deterministic simulated dataset as daily Parquet partitions (stores x SKUs series)."""
    from salesdata import dvc_versions
    from salesdata.datasets import generate

    settings = get_settings()
    data_dir = (out or settings.data).resolve()
    if (data_dir / "sales").exists():
        typer.echo(f"refusing to overwrite existing data in {data_dir}; remove it or choose --out", err=True)
        raise typer.Exit(code=1)
    partitions = generate(data_dir, preset, stores=stores, skus=skus, days=days)
    typer.echo(f"wrote {partitions} daily partitions to {data_dir}")
    if track:
        version = dvc_versions.track(settings.project_dir, data_dir)
        typer.echo(f"dataset version (DVC md5): {version}")


@app.command("append")
def append_command(
    days: Annotated[int, typer.Option(help="How many new days of sales to emit.")] = 1,
    track: Annotated[bool, typer.Option(help="Record the new version with DVC (dvc add).")] = True,
    shift: Annotated[
        str | None,
        typer.Option(help="Inject a demand shift from the first new day: level, trend or promotion."),
    ] = None,
    factor: Annotated[float, typer.Option(help="The shift's factor (level, promotion: x; trend: x per year).")] = 1.5,
    category: Annotated[str, typer.Option(help="Only this category's SKUs (default: every SKU).")] = "",
) -> None:
    """Emit the next N days of a simulated dataset as new daily partitions, the way new sales arrive."""
    from salesdata import dvc_versions
    from salesdata.datasets import append_days, next_day
    from salesdata.simulator import DemandShift

    settings = get_settings()
    injected = None
    if shift is not None:
        try:
            injected = DemandShift(shift, next_day(settings.data), factor, category)
        except ValueError as bad:
            raise typer.BadParameter(str(bad)) from None
    new_days = append_days(settings.data, days, injected)
    typer.echo(f"appended {len(new_days)} partitions: {new_days[0]} .. {new_days[-1]}")
    if track:
        version = dvc_versions.track(settings.project_dir, settings.data)
        typer.echo(f"dataset version (DVC md5): {version}")


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="Sales file: CSV or Parquet (see docs/data-contract.md).")],
    frequency: Annotated[Frequency, typer.Option(help="D (daily), W (weekly) or M (monthly).")] = "D",
    stores: Annotated[Path | None, typer.Option(help="Store master file (store_id, optional region, size).")] = None,
    skus: Annotated[Path | None, typer.Option(help="SKU master file (sku_id, optional category).")] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strptime format of the date column when it is not YYYY-MM-DD.")
    ] = None,
    delimiter: Annotated[str, typer.Option(help="Column separator of a CSV file, e.g. ';' or '\\t'.")] = ",",
    replace: Annotated[bool, typer.Option(help="Replace the current dataset (it stays in DVC).")] = False,
    append: Annotated[bool, typer.Option(help="Add new periods to the current dataset.")] = False,
) -> None:
    """Check your own sales file against the contract, write it as partitions and record a DVC version."""
    from salesdata.datasets import import_sales

    if replace and append:
        typer.echo("choose one of --replace and --append", err=True)
        raise typer.Exit(code=2)
    settings = get_settings()
    mode = "replace" if replace else "append" if append else "new"
    try:
        done = import_sales(
            settings.project_dir,
            settings.data,
            path.resolve(),
            frequency=frequency,
            stores=stores,
            skus=skus,
            limits=settings.gate,
            date_format=date_format,
            delimiter=delimiter.replace("\\t", "\t"),
            mode=mode,
        )
    except DemandopsError as refused:
        typer.echo(f"import refused, nothing was changed: {refused}", err=True)
        raise typer.Exit(code=1) from refused
    typer.echo(
        f"imported {done.rows} rows in {done.periods} {done.frequency} partitions ({done.first} .. {done.last}), "
        f"{done.masters} master data, into {settings.data}\ndataset version (DVC md5): {done.version}"
    )
    if done.replaced_version:
        typer.echo(f"the replaced dataset is version {done.replaced_version} in the DVC cache and remote")
