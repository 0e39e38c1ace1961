"""The tear sheet of one walk-forward run: a self-contained HTML page (plotly) and a PNG.

The page embeds plotly.js once in its head, so it opens without a network. Each part is a
`<section id="...">` with an `<h2>`: equity, drawdown, monthly_returns, rolling_sharpe, trades,
windows, regimes, spec, audits and lineage (with the data versions). Numbers come from the
stored run; percent is only how they are shown.
"""

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from quant_assets.domain.governance import RecordAudit
from quant_assets.domain.strategy import ModuleRef, StrategySpec
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.reports import figures
from quant_assets.reports.equity_png import equity_chart_png
from quant_assets.reports.metric_rows import METRIC_ROWS
from quant_assets.reports.paths import TearSheetPaths, tear_sheet_paths, write_bytes_atomically

SECTION_IDS: Final = (
    "equity",
    "drawdown",
    "monthly_returns",
    "rolling_sharpe",
    "trades",
    "windows",
    "regimes",
    "spec",
    "audits",
    "lineage",
)
_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.fail { color: #b00020; font-weight: 600; } .pass { color: #1b5e20; }
.note { color: #555; font-size: 0.85rem; }
"""


@dataclass(frozen=True, eq=False)
class TearSheetInputs:
    """Everything a tear sheet shows, read from storage (see `reports.collect`).

    Attributes:
        oos_curve: The stitched out-of-sample curve as stored (ts, equity, exposure).
        trades: The out-of-sample trades as stored (instrument, pnl, exit_reason, ...).
        buy_and_hold: Equal-weight buy-and-hold equity (ts, equity) over the same bars.
        initial_cash: Equity the stitched curve starts from.
        audits: The audit verdicts of the run (empty: not audited yet).
        goal: The research goal the run worked for.
        record_id: The run's archive record, if archived.
        record_state: That record's state.
        ancestors: The spec's ancestors, nearest first.
        partitions: Manifest rows of the bars partitions behind the data versions.
    """

    run: WalkForwardRun
    spec: StrategySpec
    oos_curve: pl.DataFrame
    trades: pl.DataFrame
    buy_and_hold: pl.DataFrame
    initial_cash: float
    audits: tuple[RecordAudit, ...] = ()
    goal: str | None = None
    record_id: str | None = None
    record_state: str | None = None
    ancestors: tuple[str, ...] = ()
    partitions: pl.DataFrame | None = None


def _text(value: object) -> str:
    return html.escape(str(value))


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    # Numbers are escaped here and right-aligned; strings are HTML their builders escaped.
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{_text(c)}</td>' if isinstance(c, int | float) else f"<td>{c}</td>"
            for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}">\n<h2>{_text(title)}</h2>\n{body}\n</section>'


def _figure_html(figure: go.Figure, div_id: str) -> str:
    # plotly.js is embedded once in the page head, never fetched.
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def _fmt(template: str, value: object) -> str:
    return _text(template.format(value))


def _value(value: object) -> str:
    # Searched floats carry 16 digits; four significant ones read better and suffice here.
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _params(params: dict[str, object]) -> str:
    pairs = (f"{key}={_value(value)}" for key, value in sorted(params.items()))
    return _text(", ".join(pairs) or "none")


def _equity_body(inputs: TearSheetInputs) -> str:
    final_bh = inputs.buy_and_hold["equity"][-1] / inputs.initial_cash - 1.0
    note = (
        f'<p class="note">Strategy {_fmt("{:.2%}", inputs.run.oos_report.total_return)} vs '
        f"buy and hold {_fmt('{:.2%}', final_bh)} over {inputs.oos_curve.height} out-of-sample "
        f"bars from {_text(inputs.run.oos_report.start)} to {_text(inputs.run.oos_report.end)}; "
        "buy and hold splits the cash equally across the instruments at the first bar's open, "
        "without costs.</p>"
    )
    figure = figures.equity_figure(inputs.oos_curve, inputs.buy_and_hold)
    return _figure_html(figure, "equity_figure") + note


def _drawdown_body(inputs: TearSheetInputs) -> str:
    oos = inputs.run.oos_report
    note = (
        f'<p class="note">Max drawdown {_fmt("{:.2%}", oos.max_drawdown)}, longest spell '
        f"{oos.max_drawdown_duration_bars} bars.</p>"
    )
    figure = figures.drawdown_figure(inputs.oos_curve, inputs.initial_cash)
    return _figure_html(figure, "drawdown_figure") + note


def _monthly_body(inputs: TearSheetInputs) -> str:
    monthly = figures.monthly_returns(inputs.oos_curve, inputs.initial_cash)
    values = monthly["monthly_return"]
    note = (
        f'<p class="note">{int((values > 0).sum())} of {values.len()} months positive; best '
        f"{_fmt('{:.2%}', values.max())}, worst {_fmt('{:.2%}', values.min())} (compounded bar "
        "returns per UTC calendar month; partial first and last months included).</p>"
    )
    return _figure_html(figures.monthly_returns_figure(monthly), "monthly_returns_figure") + note


def _rolling_body(inputs: TearSheetInputs) -> str:
    ppy = inputs.run.oos_report.periods_per_year
    window = figures.rolling_window_bars(ppy, inputs.oos_curve.height)
    rolling = figures.rolling_sharpe(inputs.oos_curve, inputs.initial_cash, ppy, window)
    if rolling.height == 0:
        return f'<p class="note">Too few bars ({inputs.oos_curve.height}) for a rolling Sharpe.</p>'
    values = rolling["rolling_sharpe"]
    note = (
        f'<p class="note">Trailing {window}-bar windows: last {_fmt("{:.2f}", values[-1])}, '
        f"lowest {_fmt('{:.2f}', values.min())}, highest {_fmt('{:.2f}', values.max())}.</p>"
    )
    return (
        _figure_html(figures.rolling_sharpe_figure(rolling, window), "rolling_sharpe_figure") + note
    )


def _trades_body(inputs: TearSheetInputs) -> str:
    trades = inputs.trades
    if trades.height == 0:
        return '<p class="note">No out-of-sample trades.</p>'
    by_instrument = (
        trades.group_by("instrument")
        .agg(pl.len().alias("trades"), pl.col("pnl").sum().alias("pnl"))
        .sort("instrument")
    )
    rows = [(_text(k), n, f"{pnl:,.2f}") for k, n, pnl in by_instrument.iter_rows()]
    return (
        _figure_html(figures.trade_pnl_figure(trades), "trade_pnl_figure")
        + _figure_html(figures.exit_reasons_figure(trades), "exit_reasons_figure")
        + _table("trades_by_instrument", ["instrument", "trades", "PnL"], rows)
    )


def _windows_body(run: WalkForwardRun) -> str:
    metrics = _table(
        "run_metrics",
        ["metric", "in sample", "out of sample"],
        [
            (_text(label), _fmt(f, getattr(run.is_report, a)), _fmt(f, getattr(run.oos_report, a)))
            for label, a, f in METRIC_ROWS
        ],
    )
    rows = []
    for window in run.windows:
        b, ins, oos = window.bounds, window.is_report, window.oos_report
        rows.append(
            (
                b.index,
                _text(f"{b.train_first_at:%Y-%m-%d %H:%M} .. {b.train_last_at:%Y-%m-%d %H:%M}"),
                _text(f"{b.test_first_at:%Y-%m-%d %H:%M} .. {b.test_last_at:%Y-%m-%d %H:%M}"),
                _params(dict(window.best_params)),
                window.trials,
                _fmt("{:.2f}", ins.sharpe),
                _fmt("{:.2f}", oos.sharpe),
                _fmt("{:.2%}", oos.total_return),
                _fmt("{:.2%}", oos.max_drawdown),
                oos.trades,
            )
        )
    headers = ["window", "train", "test", "best params", "trials", "IS Sharpe", "OOS Sharpe"]
    per_window = _table("window_results", [*headers, "OOS return", "OOS max DD", "trades"], rows)
    return (
        "<h3>Stitched in-sample vs out-of-sample</h3>"
        + metrics
        + f"<h3>Per window ({len(run.windows)})</h3>"
        + per_window
    )


def _regimes_body(run: WalkForwardRun) -> str:
    rows = [
        (_text(r.regime), r.bars, _fmt("{:.2%}", r.total_return), _fmt("{:.2f}", r.sharpe))
        for r in run.regimes
    ]
    note = '<p class="note">Out-of-sample bars by market regime (trend x volatility).</p>'
    return note + _table("regime_stats", ["regime", "bars", "return", "Sharpe"], rows)


def _module_rows(spec: StrategySpec) -> list[tuple[str, str, str]]:
    refs: list[tuple[str, ModuleRef]] = [("baseline", spec.baseline)]
    refs += [(f"filter {i + 1}", ref) for i, ref in enumerate(spec.filters)]
    refs += [("execution", spec.execution), ("risk", spec.risk)]
    return [(_text(role), _text(ref.module), _params(dict(ref.params))) for role, ref in refs]


def _spec_body(spec: StrategySpec) -> str:
    space = [
        (_text(path), _text(_value(r.low)), _text(_value(r.high)), _text(r.kind))
        for path, r in sorted(spec.search_space.items())
    ]
    data, wf, cost = spec.data, spec.walk_forward, spec.cost
    settings = [
        ("name", spec.name),
        ("template", spec.template),
        ("hypothesis", spec.hypothesis),
        ("instruments", ", ".join(data.instruments)),
        ("timeframe", data.timeframe),
        ("data slice", f"{data.start.isoformat()} .. {data.end.isoformat()}"),
        ("walk-forward", _params(wf.model_dump(mode="json"))),
        (
            "costs",
            f"commission {cost.commission_rate:.4%} per side, slippage {cost.slippage_bps} bps",
        ),
    ]
    return (
        _table("spec_settings", ["field", "value"], [(_text(k), _text(v)) for k, v in settings])
        + _table("spec_modules", ["role", "module", "params"], _module_rows(spec))
        + _table("search_space", ["parameter", "low", "high", "kind"], space)
    )


def _audits_body(audits: Sequence[RecordAudit]) -> str:
    if not audits:
        return '<p class="note">Not audited yet: the asset checks have not run on this run.</p>'
    blocked = [a.name for a in audits if a.blocks]
    summary = f"{sum(a.passed for a in audits)} of {len(audits)} audits passed; " + (
        f"blocking failures: {', '.join(blocked)}." if blocked else "no blocking failure."
    )
    rows = [
        (
            _text(a.name),
            '<span class="pass">passed</span>' if a.passed else '<span class="fail">failed</span>',
            "yes" if a.blocking else "no (warning)",
            _text(a.message),
        )
        for a in audits
    ]
    note = f'<p class="note">{_text(summary)}</p>'
    return note + _table("audit_verdicts", ["audit", "verdict", "blocking", "message"], rows)


def _lineage_body(inputs: TearSheetInputs) -> str:
    run, spec = inputs.run, inputs.spec
    facts = [
        ("spec id", run.spec_id),
        ("parent spec", spec.lineage.parent_id or "none (root)"),
        ("ancestors", " <- ".join(inputs.ancestors) or "none"),
        ("generation", spec.lineage.generation),
        ("created by", spec.lineage.created_by),
        ("goal", inputs.goal or "n/a"),
        ("run id", run.run_id),
        (
            "archive record",
            f"{inputs.record_id} ({inputs.record_state})"
            if inputs.record_id
            else "not archived yet",
        ),
        ("engine version", run.engine_version),
        ("preferences hash", run.preferences_hash or "n/a"),
        ("run started / finished", f"{run.started_at.isoformat()} / {run.finished_at.isoformat()}"),
        ("windows recomputed / reused", f"{run.windows_recomputed} / {run.windows_reused}"),
        ("trials executed / total", f"{run.trials_executed} / {run.trials_total}"),
    ]
    versions = [(_text(k), _text(v)) for k, v in sorted(run.data_versions.items())]
    body = (
        _table("lineage_facts", ["item", "value"], [(_text(k), _text(v)) for k, v in facts])
        + "<h3>Data versions</h3>"
        + _table("data_versions", ["instrument", "data version"], versions)
    )
    if inputs.partitions is not None and inputs.partitions.height > 0:
        columns = ["instrument", "month", "rows", "content_hash", "source"]
        rows = [
            (_text(k), _text(m), int(n), _text(h), _text(s))
            for k, m, n, h, s in inputs.partitions.select(columns).iter_rows()
        ]
        body += "<h3>Bars partitions</h3>" + _table("bars_partitions", columns, rows)
    return body


def render_tear_sheet(inputs: TearSheetInputs) -> str:
    """Return the tear sheet as one self-contained HTML page (plotly.js embedded).

    Args:
        inputs: The run and everything shown beside it.

    Returns:
        The HTML text.
    """
    run = inputs.run
    sections = [
        _section("equity", "Out-of-sample equity vs buy and hold", _equity_body(inputs)),
        _section("drawdown", "Underwater drawdown", _drawdown_body(inputs)),
        _section("monthly_returns", "Monthly returns", _monthly_body(inputs)),
        _section("rolling_sharpe", "Rolling Sharpe", _rolling_body(inputs)),
        _section("trades", "Trades: PnL and exit reasons", _trades_body(inputs)),
        _section("windows", "Walk-forward windows and IS/OOS metrics", _windows_body(run)),
        _section("regimes", "Regime breakdown", _regimes_body(run)),
        _section("spec", "Strategy spec: modules and parameters", _spec_body(inputs.spec)),
        _section("audits", "Audits", _audits_body(inputs.audits)),
        _section("lineage", "Lineage and data versions", _lineage_body(inputs)),
    ]
    title = f"Tear sheet: {inputs.spec.name} (spec {run.spec_id}, run {run.run_id})"
    headline = (
        f"OOS Sharpe {run.oos_report.sharpe:.2f}, max drawdown {run.oos_report.max_drawdown:.2%}, "
        f"{run.oos_report.trades} trades, deflated Sharpe {run.deflated_sharpe:.3f}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n<body>\n'
        f"<h1>{_text(title)}</h1>\n<p>{_text(headline)}</p>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def write_tear_sheet(inputs: TearSheetInputs, reports_dir: Path) -> TearSheetPaths:
    """Write the run's HTML tear sheet and equity PNG, each atomically (temp file, rename).

    Args:
        inputs: The run and everything shown beside it.
        reports_dir: The reports folder; files go to `<spec_id>/<run_id>.html|.png` in it.

    Returns:
        Where the two files were written.
    """
    paths = tear_sheet_paths(reports_dir, inputs.run.spec_id, inputs.run.run_id)
    png = equity_chart_png(inputs.oos_curve, inputs.buy_and_hold, inputs.initial_cash)
    write_bytes_atomically(png, paths.png)
    write_bytes_atomically(render_tear_sheet(inputs).encode("utf-8"), paths.html)
    return paths
